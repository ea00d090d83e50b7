"""Dagster definitions: the code location the UI loads (workspace.yaml) and every run is built from.

Built from the topology when Dagster loads the location (`defs`, a lazy `@dg.definitions`; importing this
module does nothing): config from $XTS_CONFIG (default: the packaged demo topology), pointed at a sandbox
when $XTS_SANDBOX names its state directory. Partitions come from the config, so a
new tenant or pair appears after "Reload definitions" in the UI, ready for a backfill.

A sync cycle: the schedule launches one run per source tenant (extract + stage) and per target tenant
(snapshot), tagged with the cycle; `pair_cycle_sensor` then launches one run per pair (desired, plan,
apply) once that pair's source and target runs succeeded, and skips a quarantined pair (as Entra does) until
its back-off retry is due or `xts release` lifts it, and a pair whose inputs are unchanged since its last
clean run (xts_pipeline/unchanged.py; an observation on the pair's asset says so). Pair runs for different targets run
concurrently (run queue); DuckDB-only steps share the "duckdb" pool of limit 1 (dagster_home/dagster.yaml).
"""


import json
import os
import warnings
from pathlib import Path
from typing import Any

import dagster as dg

from assets.console import console_logger
from assets.guarded_plan import build_guarded_plan
from assets.partitions import build_partitions
from assets.resources import StagingDuckDB, TopologyResource, graph_resource, load_topology
from assets.sync import APPLIED, DESIRED, GUARDED, PLAN, RAW, SNAPSHOT, STAGED, build_sync_assets
from assets.topology_assets import build_topology_specs, unchanged_observation
from checks.plan_checks import build_plan_checks
from checks.staging_checks import build_desired_checks, build_staging_checks
from xts_pipeline import paths, unchanged
from xts_pipeline.guardrails.quarantine import skipped_pairs

# Partitioned asset checks are a preview feature in Dagster 1.13; we rely on them deliberately (docs/pipeline.md).
warnings.filterwarnings("ignore", message=".*partitions_def on an AssetCheckSpec.*")
warnings.filterwarnings("ignore", message=".*(with_source_code_references|LocalFileCodeReference|CodeReferencesMetadataValue).*")

CYCLE_TAG = "xts/cycle"
KIND_TAG = "xts/kind"


def cron_for_interval(minutes: int) -> list[str]:
    """Cron strings that fire every `minutes` through the day (cron alone can't say "every 40 min")."""
    if 60 % minutes == 0:
        return [f"*/{minutes} * * * *"]
    by_minute: dict[int, list[int]] = {}
    for t in range(0, 24 * 60, minutes):
        by_minute.setdefault(t % 60, []).append(t // 60)
    return [f"{m} {','.join(map(str, hours))} * * *" for m, hours in sorted(by_minute.items())]


def build_definitions(config_path: str | os.PathLike[str], sandbox: str | None = None,
                      duckdb_path: str | os.PathLike[str] | None = None) -> dg.Definitions:
    """Definitions for one topology (tests and the CLI call this with their own paths)."""
    config_path = str(Path(config_path).absolute())
    sandbox = str(Path(sandbox).absolute()) if sandbox else None
    topo = load_topology(config_path, sandbox)
    parts = build_partitions(topo)
    graph = graph_resource(config_path, sandbox)
    db = str(Path(duckdb_path).absolute()) if duckdb_path else str(paths.duckdb_path(topo))
    # Partitioned checks (per source tenant, per pair): the Checks tab shows each partition's latest result.
    checks = [*build_staging_checks(parts.sources), *build_desired_checks(parts.pairs), *build_plan_checks(parts.pairs)]
    # The guardrail checks belong to the guarded-plan step (assets/guarded_plan.py), which apply obeys.
    sync_assets = [*build_sync_assets(parts), build_guarded_plan(parts.pairs)]

    source_job = dg.define_asset_job("source_job", selection=dg.AssetSelection.assets(RAW, STAGED),
                                     tags={KIND_TAG: "source"},
                                     description="extract and stage one source tenant")
    target_job = dg.define_asset_job("target_job", selection=dg.AssetSelection.assets(SNAPSHOT),
                                     tags={KIND_TAG: "target"},
                                     description="snapshot one target tenant")
    pair_job = dg.define_asset_job("pair_sync_job", selection=dg.AssetSelection.assets(DESIRED, PLAN, GUARDED, APPLIED),
                                   tags={KIND_TAG: "pair"},
                                   description="desired state, plan, guardrails and apply for one pair")
    dry_run_job = dg.define_asset_job("pair_dry_run_job", selection=dg.AssetSelection.assets(DESIRED, PLAN, GUARDED),
                                      tags={KIND_TAG: "dry-run"},
                                      description="plan only: shows the full plan, writes nothing to Graph")
    one_user_job = dg.define_asset_job(
        "provision_one_user_job", selection=dg.AssetSelection.assets(DESIRED, PLAN, GUARDED, APPLIED),
        tags={KIND_TAG: "on-demand"},
        # No default config: a default user would be silently replaced by nothing, and the run would sync the
        # whole pair. The plan step refuses to run this job without ops.provisioning_plan.config.only_user.
        description="on-demand provisioning of one user: set ops.provisioning_plan.config.only_user (the source "
                    "user's object id, UPN or mail; required, the run fails without it). "
                    "`xts provision --pair 'SRC->DST' --user ...` runs it and prints Entra's steps")

    schedule_cfg = topo.schedule
    crons = [schedule_cfg.cron] if schedule_cfg.cron else cron_for_interval(schedule_cfg.interval_minutes)

    def cycle_schedule(name: str, job: Any, kind: str, keys: list[str], what: str) -> dg.ScheduleDefinition:
        # One schedule per side: a schedule targets one job, and source and target assets are partitioned
        # differently. Both tag their runs with the same cycle id (the tick's time), which the sensor joins on.
        cadence = (f"on cron {schedule_cfg.cron}" if schedule_cfg.cron
                   else f"every {schedule_cfg.interval_minutes} minutes")

        @dg.schedule(cron_schedule=crons, job=job, name=name, default_status=dg.DefaultScheduleStatus.STOPPED,
                     description=f"{cadence} (UTC): {what}. Starts off: turn it on here, with its twin schedule "
                                 "(sources and targets), to sync on a timer")
        def _schedule(context: dg.ScheduleEvaluationContext):
            when = context.scheduled_execution_time
            cycle = when.strftime("%Y%m%dT%H%M")
            for key in keys:
                yield dg.RunRequest(run_key=f"{cycle}:{kind}:{key}", partition_key=key,
                                    tags={CYCLE_TAG: cycle, KIND_TAG: kind, "xts/tenant": key})

        return _schedule

    schedules = [
        cycle_schedule("sync_cycle_sources", source_job, "source", parts.sources.get_partition_keys(),
                       "extract and stage every source tenant"),
        cycle_schedule("sync_cycle_targets", target_job, "target", parts.targets.get_partition_keys(),
                       "snapshot every target tenant"),
    ]

    pairs = [p for p in topo.pairs() if p.enabled]

    @dg.sensor(job=pair_job, minimum_interval_seconds=30, name="pair_cycle_sensor",
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="after a scheduled cycle's source and target runs, launch each pair's run "
                           "(not a quarantined pair, nor one whose inputs are unchanged since its last clean run)")
    def pair_cycle_sensor(context: dg.SensorEvaluationContext):
        runs = context.instance.get_runs(filters=dg.RunsFilter(tags={KIND_TAG: "source"}), limit=50)
        cycle = next((r.tags[CYCLE_TAG] for r in runs if r.tags.get(CYCLE_TAG)), None)
        if not cycle:
            return dg.SkipReason("no scheduled cycle yet: turn on the sync_cycle_sources and sync_cycle_targets schedules "
                                 "(Automation); `xts sync` runs whole cycles itself and needs no sensor")
        cycle_runs = context.instance.get_runs(filters=dg.RunsFilter(tags={CYCLE_TAG: cycle}))
        status = {(r.tags.get(KIND_TAG), r.tags.get("dagster/partition")): r.status for r in cycle_runs}
        if any(not r.is_finished for r in cycle_runs if r.tags.get(KIND_TAG) in ("source", "target")):
            return dg.SkipReason(f"cycle {cycle}: extraction still running")
        ok = dg.DagsterRunStatus.SUCCESS
        held = skipped_pairs(db, [p.key for p in pairs], config_args=paths.config_args(config_path))
        # Which pairs this cycle already runs or skips (a later tick must not call a run it launched "unchanged").
        seen = json.loads(context.cursor or "{}")
        decided: dict[str, bool] = seen.get("decided", {}) if seen.get("cycle") == cycle else {}
        ready = [p for p in pairs if p.key not in held and status.get(("source", p.source)) == ok
                 and status.get(("target", p.target)) == ok]
        fresh = unchanged.decide(db, topo, [p.key for p in ready if p.key not in decided])
        decided.update({k: d.skip for k, d in fresh.items()})
        requests, skipped = [], [d for d in fresh.values() if d.skip]
        for p in pairs:
            if p.key in held:
                # As Entra: a quarantined pair is skipped until its back-off retry is due or it is released.
                context.log.warning(f"cycle {cycle}: {held[p.key]}")
            elif p not in ready:
                context.log.warning(f"cycle {cycle}: pair {p.name} not run because its source or target run failed")
            elif not decided[p.key]:
                requests.append(dg.RunRequest(run_key=f"{cycle}:pair:{p.key}", partition_key=p.key,
                                              tags={CYCLE_TAG: cycle, "xts/pair": p.name, "xts/source": p.source,
                                                    "xts/target": p.target}))
        for d in skipped:
            context.log.info(f"cycle {cycle}: pair {d.pair_key}: unchanged (skipped): {d.reason}")
        reasons = [*held.values(), *(f"{d.pair_key} unchanged (skipped)" for d in skipped)]
        return dg.SensorResult(run_requests=requests, cursor=json.dumps({"cycle": cycle, "decided": decided}),
                               asset_events=[unchanged_observation(d, cycle) for d in skipped],
                               skip_reason=None if requests or not reasons else f"cycle {cycle}: " + "; ".join(reasons))

    specs = build_topology_specs(topo)
    return dg.Definitions(
        assets=dg.with_source_code_references([*sync_assets, *specs]),
        asset_checks=checks,
        jobs=[source_job, target_job, pair_job, dry_run_job, one_user_job],
        schedules=schedules,
        sensors=[pair_cycle_sensor],
        loggers={"console": console_logger},
        resources={"duckdb": StagingDuckDB(path=db),
                   "topology": TopologyResource(config_path=config_path, sandbox=sandbox), "graph": graph},
    )


@dg.definitions
def defs() -> dg.Definitions:
    """The UI's definitions: topology, sandbox and store by xts_pipeline.paths, as the CLI resolves them.

    Lazy: Dagster calls this when it loads the code location (the UI, `dagster dev`, each run's process), so
    importing this module reads no file, builds nothing and changes no environment.
    """
    resolved, _ = paths.resolve(None, os.environ.get(paths.SANDBOX_ENV) or None)
    return build_definitions(resolved.config, str(resolved.sandbox) if resolved.sandbox else None, resolved.duckdb)
