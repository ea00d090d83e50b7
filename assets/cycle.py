"""One sync cycle run as the CLI and the demo do: tenant runs (extract, snapshot), then pair runs.

Each step is a real Dagster run of the definitions' jobs against the given instance, so the runs, asset
materializations and check results show up in the UI like scheduled ones.

Concurrency (each target has its own Graph budget). Runs go in two phases:
1. one task per tenant: its source run (extract + stage), then its target run (snapshot). A tenant's reads
   share its app's budget, so they stay in one task; different tenants run at the same time.
2. one task per target tenant: the runs of the pairs into that target, one after another (they share the
   target's write budget); different targets run at the same time.
Tasks run in worker processes, not threads (Dagster's in-process execution is not documented as
thread-safe), each with its own definitions and the instance in $DAGSTER_HOME, so every run lands in the
same storage and appears in the UI. Workers are forked from a fork server (a clean, single-threaded
process that preloads the heavy imports once) or spawned (XTS_SYNC_START=spawn). Every worker is its own
single-process executor: a worker that dies fails only its task, never the others'. DuckDB stays safe
because store.connect() serialises connections across processes with a file lock, and extract and apply
never hold a connection across a Graph call.
"""

from __future__ import annotations

import logging
import os
import queue
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import dagster as dg

from assets import launch
from assets.summary import PairOutcome, _pair_counts
from assets.topology_assets import probe_observation, unchanged_observation
from assets.worker_start import default_workers, start_workers
from assets.worker_start import mp_context as _mp_context
from xts_pipeline import paths, probe, unchanged
from xts_pipeline.guardrails.quarantine import skipped_pairs
from xts_pipeline.vocabulary import shown_pair

_log = logging.getLogger("xts.sync")
CYCLE_TAG, KIND_TAG = "xts/cycle", "xts/kind"  # as in definitions.py; kind "cli" keeps the sensor off these runs


@dataclass(frozen=True)
class CycleSpec:
    """What a worker process needs to rebuild the same definitions (picklable, unlike Definitions)."""

    config: str
    sandbox: str | None
    db: str
    # The caller's environment at cycle time (DAGSTER_HOME, secrets, XTS_*): a fork server started earlier
    # in this process would otherwise hand its workers the environment of that earlier moment.
    env: tuple[tuple[str, str], ...] = ()


def _failures(result: Any) -> list[str]:
    out = []
    for ev in result.all_events:
        if ev.is_step_failure:
            err = ev.step_failure_data.error
            cause = err.cause if err and err.cause else err
            if err and "DagsterAssetCheckFailedError" in (err.cls_name or "") + (cause.cls_name or ""):
                continue  # a blocking check stopped the run: reported as a failed check, not an error
            out.append(f"{ev.step_key}: {(cause.message if cause else 'failed').strip()}")
    return out


def _blocking_failed(result: Any, defs: dg.Definitions) -> tuple[list[str], str]:
    """Failed checks that stop a pair run (blocking ones, and the guarded plan's ERROR guardrails), and the
    approve command if one of them can be approved."""
    from assets.sync import GUARDED

    graph = defs.resolve_asset_graph()
    failed, approve = [], ""
    for ev in result.get_asset_check_evaluations():
        spec = graph.get_check_spec(ev.asset_check_key)
        stops = spec.blocking or ev.asset_key == GUARDED
        if not ev.passed and stops and ev.severity == dg.AssetCheckSeverity.ERROR:
            failed.append(f"{ev.check_name}: {ev.description or 'failed'}")
            cmd = ev.metadata.get("approve_with")
            approve = approve or (str(cmd.value) if cmd is not None else "")
    return failed, approve


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"


def _console_config() -> dict:
    """Console at INFO for CLI runs (XTS_LOG_LEVEL overrides): every event still lands in the run's event log."""
    level = os.environ.get("XTS_LOG_LEVEL", "INFO").upper()
    return {"loggers": {"console": {"config": {"log_level": level}}}}


def run_tenant(defs: dg.Definitions, instance: dg.DagsterInstance, tenant: str, sides: list[str],
               tags: dict[str, str]) -> dict[str, list[str]]:
    """The tenant's source run, then its target run (they share the tenant's read budget): errors per side."""
    out: dict[str, list[str]] = {}
    for side in sides:  # "source" before "target"
        job_name = f"{side}_job"
        try:
            res = launch.execute(defs, instance, job_name, partition_key=tenant,
                                 tags={**tags, "xts/tenant": tenant, "xts/side": side}, run_config=_console_config())
            out[side] = [] if res.success else _failures(res) or [f"{job_name} {tenant} failed"]
        except Exception as exc:  # noqa: BLE001 - one tenant's crash must not hide the others' results
            out[side] = [f"{job_name} {tenant}: {_one_line(exc)}"]
    return out


def run_target_group(defs: dg.Definitions, instance: dg.DagsterInstance, db: str | Path, pair_keys: list[str],
                     dry_run: bool, tags: dict[str, str], full: bool = False) -> list[PairOutcome]:
    """The runs of pairs that share one target, one after another: they share its Graph write budget."""
    job_name = "pair_dry_run_job" if dry_run else "pair_sync_job"
    run_config = _console_config()
    if full:
        run_config["ops"] = {"provisioning_plan": {"config": {"full": True}}}
    out = []
    for key in pair_keys:
        o = PairOutcome(pair_key=key, dry_run=dry_run)
        try:
            source, _, target = key.partition("__")
            res = launch.execute(defs, instance, job_name, partition_key=key, run_config=run_config,
                                 tags={**tags, "xts/pair": shown_pair(key), "xts/source": source,
                                       "xts/target": target})
            o.ran, o.run_id = True, res.run_id
            o.failed_checks, o.approve_command = _blocking_failed(res, defs)
            if not res.success:
                o.errors = _failures(res)
            _pair_counts(db, key, source, dry_run, o)
            if not dry_run:
                now = skipped_pairs(db, [key], config_args=_config_args(defs))  # the run may have quarantined it
                o.quarantined = now.get(key, "")
        except Exception as exc:  # noqa: BLE001 - reported on this pair; the next pair still runs
            o.errors.append(f"pair run: {_one_line(exc)}")
        out.append(o)
    return out


# --- worker processes -------------------------------------------------------------------------------------

@cache
def _worker_defs(spec: CycleSpec) -> dg.Definitions:
    from assets.definitions import build_definitions

    return build_definitions(spec.config, spec.sandbox, spec.db)


def cli_instance() -> dg.DagsterInstance:
    """The instance in $DAGSTER_HOME (same storage, so every run shows in the UI), pool claims per run.

    Dagster 1.13.27's executors busy-wait while a step waits for an op-level pool slot (the next check is
    never in the future; dagster-io/dagster#20367 was closed unmerged): with `pools.granularity: op`, each
    run queued on the "duckdb" pool spins a core, which made a concurrent no-op demo cycle take 33 s
    instead of 19 s on 2 cores. `run` granularity skips op claims inside a run; DuckDB stays serialised by store.connect()'s
    file lock, and the CLI already runs the DuckDB-only steps of different tenants in separate phases.
    """
    import yaml
    from dagster._core.instance.ref import InstanceRef

    from assets.instance_storage import storage_overrides

    home = os.environ.get("DAGSTER_HOME")
    if not home:
        return dg.DagsterInstance.get()  # raises Dagster's own message about DAGSTER_HOME
    cfg_file = Path(home) / "dagster.yaml"
    cfg = (yaml.safe_load(cfg_file.read_text()) if cfg_file.exists() else None) or {}
    concurrency = dict(cfg.get("concurrency") or {})
    concurrency["pools"] = {**(concurrency.get("pools") or {}), "granularity": "run"}
    overrides = {"concurrency": concurrency, **storage_overrides(home, cfg)}
    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(home, overrides=overrides))


def _init_instance_storage() -> None:
    """Create the instance's databases here, once, before workers open it: Dagster's SQLite init is not safe
    against several processes creating the same new files at once (duplicate alembic heads)."""
    home = os.environ.get("DAGSTER_HOME")
    if home and all((Path(home) / "history" / f).exists() for f in ("runs.db", "runs/index.db")):
        return  # already there (a configured non-default storage is opened below, which is cheap enough)
    with cli_instance():
        pass


def _in_worker(spec: CycleSpec, fn: Callable[..., Any], *args: Any) -> Any:
    """Entry point in a worker process: this process's definitions, the instance in $DAGSTER_HOME."""
    if spec.env:
        os.environ.clear()
        os.environ.update(dict(spec.env))
    defs = _worker_defs(spec)
    with cli_instance() as instance:
        return fn(defs, instance, *args)


class WorkerPool:
    """Up to `size` worker processes, each a single-process executor reused across tasks.

    A shared ProcessPoolExecutor terminates every worker when one dies; one executor per worker keeps a
    crash (OOM kill, segfault) to the task it was running, and that worker is replaced for the next task.
    """

    def __init__(self, size: int) -> None:
        self._threads = ThreadPoolExecutor(max_workers=size, thread_name_prefix="xts-sync")
        self._idle: queue.SimpleQueue[ProcessPoolExecutor | None] = queue.SimpleQueue()
        for _ in range(size):
            self._idle.put(None)  # started on first use
        self._size = size

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        return self._threads.submit(self._run, fn, args)

    def _run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        worker = self._idle.get() or ProcessPoolExecutor(max_workers=1, mp_context=_mp_context())
        try:
            return worker.submit(fn, *args).result()
        except BrokenProcessPool:
            worker.shutdown(wait=False, cancel_futures=True)
            worker = None
            raise
        finally:
            self._idle.put(worker)

    def close(self) -> None:
        """Stop every worker at once, then wait for them: one after another, their exits would add up."""
        self._threads.shutdown(wait=True)
        workers = [w for w in (self._idle.get() for _ in range(self._size)) if w is not None]
        with ThreadPoolExecutor(max_workers=max(1, len(workers))) as stopping:
            list(stopping.map(lambda w: w.shutdown(wait=True), workers))

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _run_tasks(tasks: list[tuple[Callable[..., Any], tuple[Any, ...]]], workers: int, spec: CycleSpec | None,
               defs: dg.Definitions | None, instance: dg.DagsterInstance | None,
               pool: WorkerPool | None) -> list[Any]:
    """Results (or the exception each task raised) in task order, whatever order they finished in."""
    if pool is None or spec is None or workers <= 1:
        results: list[Any] = []
        for fn, args in tasks:
            try:
                results.append(fn(defs, instance, *args))
            except Exception as exc:  # noqa: BLE001 - as in the concurrent path: reported per task
                results.append(exc)
        return results
    futures = [pool.submit(_in_worker, spec, fn, *args) for fn, args in tasks]
    out: list[Any] = []
    for fut in futures:
        try:
            out.append(fut.result())
        except Exception as exc:  # noqa: BLE001 - a dead worker fails its own task only
            out.append(exc)
    return out


def _config_args(defs: dg.Definitions) -> list[str]:
    """`--config PATH` for the commands this cycle prints, from the definitions' own topology resource."""
    from assets.resources import TopologyResource

    topology = (defs.resources or {}).get("topology")
    return paths.config_args(topology.config_path if isinstance(topology, TopologyResource) else None)


def cycle_tags() -> dict[str, str]:
    """Tags of one CLI cycle: the same cycle id on every run of it, kind "cli" (the pair sensor ignores it)."""
    return {CYCLE_TAG: f"cli-{datetime.now(UTC):%Y%m%dT%H%M%S}-{os.getpid()}", KIND_TAG: "cli"}


def run_cycle(defs: dg.Definitions | None, instance: dg.DagsterInstance | None, topology: Any, db: str | Path,
              pair_keys: list[str] | None = None, dry_run: bool = False, *, spec: CycleSpec | None = None,
              workers: int = 1, tags: dict[str, str] | None = None, full: bool = False) -> list[PairOutcome]:
    """Extract every source and snapshot every target the pairs need, then run each pair (or its dry run).

    A pair whose inputs hash as after its last clean run, with nothing pending, is not run: its outcome
    says "unchanged (skipped)" and an observation on its asset records why (xts_pipeline/unchanged.py).
    `full` runs every pair anyway, each with a full re-diff; a dry run always runs.
    With `spec` and `workers` > 1, tenants, then targets, run concurrently in worker processes (module
    docstring); otherwise every run is in this process, one after another. Outcomes come back in the
    topology's pair order either way.
    """
    from assets.lease_hook import cli_pair_leases, release_cli

    wanted = [p for p in topology.pairs() if p.enabled and (pair_keys is None or p.key in pair_keys)]
    tags = {**cycle_tags(), **(tags or {})}  # the cycle tag is the lease owner its runs re-enter with
    # One cycle per pair at a time: this cycle's leases are taken before any extraction writes.
    taken, busy = cli_pair_leases(str(db), [p.key for p in wanted], tags)
    try:
        done = _run_leased(defs, instance, topology, db, [p for p in wanted if p.key in taken], dry_run, spec,
                           workers, tags, full)
    finally:
        release_cli(str(db), taken, tags)
    for key, msg in busy.items():
        done[key] = PairOutcome(pair_key=key, dry_run=dry_run, errors=[msg])
    return [done[p.key] for p in wanted]


def _run_leased(defs: dg.Definitions | None, instance: dg.DagsterInstance | None, topology: Any, db: str | Path,
                pairs: list[Any], dry_run: bool, spec: CycleSpec | None, workers: int, tags: dict[str, str],
                full: bool) -> dict[str, PairOutcome]:
    """run_cycle's body for the pairs whose leases this cycle holds."""
    outcomes = {p.key: PairOutcome(pair_key=p.key, dry_run=dry_run) for p in pairs}
    if not (dry_run or full):
        pairs = _probe_first(defs, instance, spec, topology, db, pairs, outcomes, tags)
    if not pairs:
        return outcomes  # nothing changed: no tenant run, no worker started
    if spec is not None and workers > 1:
        start_workers()
    sources, targets = {p.source for p in pairs}, {p.target for p in pairs}
    tenants = sorted(sources | targets)
    sides = {t: [s for s, group in (("source", sources), ("target", targets)) if t in group] for t in tenants}
    pool = WorkerPool(min(workers, max(len(tenants), 1))) if spec is not None and workers > 1 else None
    try:
        side_ok: dict[tuple[str, str], list[str]] = {}
        tenant_tasks = [(run_tenant, (t, sides[t], tags)) for t in tenants]
        for t, res in zip(tenants, _run_tasks(tenant_tasks, workers, spec, defs, instance, pool), strict=True):
            for side in sides[t]:
                side_ok[(side, t)] = (res.get(side, []) if isinstance(res, dict)
                                      else [f"{side} run for {t}: {_one_line(res)}"])
        # With workers this process has no definitions: the spec names the same topology file.
        config_args = _config_args(defs) if defs is not None else paths.config_args(spec.config if spec else None)
        held = {} if dry_run else skipped_pairs(db, [p.key for p in pairs], config_args=config_args)
        groups: dict[str, list[str]] = {}
        for p in pairs:
            o = outcomes[p.key]
            o.errors = side_ok[("source", p.source)] + side_ok[("target", p.target)]
            if p.key in held:
                o.quarantined = held[p.key]  # skipped like a scheduled cycle skips it
            if not (o.errors or o.quarantined):
                groups.setdefault(p.target, []).append(p.key)
        if not (dry_run or full):
            _skip_unchanged(instance, topology, db, groups, outcomes, tags)
        group_tasks = [(run_target_group, (str(db), keys, dry_run, tags, full)) for keys in groups.values()]
        results = _run_tasks(group_tasks, workers, spec, defs, instance, pool)
        for (target, keys), res in zip(groups.items(), results, strict=True):
            if isinstance(res, BaseException):
                for k in keys:
                    outcomes[k].errors.append(f"worker for target {target}: {_one_line(res)}")
            else:
                outcomes.update({o.pair_key: o for o in res})
    finally:
        if pool is not None:
            pool.close()
    return outcomes


def _probe_first(defs: dg.Definitions | None, instance: dg.DagsterInstance | None, spec: CycleSpec | None,
                 topology: Any, db: str | Path, pairs: list[Any], outcomes: dict[str, PairOutcome],
                 tags: dict[str, str]) -> list[Any]:
    """The pairs that need runs, after the change probe (xts_pipeline/probe.py) has read Graph for changes.

    The others are marked unchanged and observed, with the tenant sides whose runs this cycle did not need.
    """
    from assets.resources import GraphResource, graph_resource

    graph = (defs.resources or {}).get("graph") if defs is not None else None
    if not isinstance(graph, GraphResource):
        graph = graph_resource(spec.config, spec.sandbox) if spec is not None else None
    if graph is None:
        return pairs
    try:
        found = probe.probe(db, topology, [p.key for p in pairs], graph.client)
    except Exception as exc:  # noqa: BLE001 - when in doubt, run: a probe that cannot decide skips nothing
        _log.warning("the change probe could not decide (%s): every pair runs", _one_line(exc))
        return pairs
    skipped = found.skipped()
    if not skipped:
        return pairs
    keep = [p for p in pairs if not found.decisions[p.key].skip]
    needed = {("source", p.source) for p in keep} | {("target", p.target) for p in keep}
    quiet = [v for k, v in sorted(found.sides.items()) if k not in needed and not v.changed]
    _mark_skipped(instance, skipped, outcomes, tags, quiet)
    return keep


def _skip_unchanged(instance: dg.DagsterInstance | None, topology: Any, db: str | Path,
                    groups: dict[str, list[str]], outcomes: dict[str, PairOutcome], tags: dict[str, str]) -> None:
    """Take the pairs whose inputs are unchanged out of `groups`, mark their outcomes, observe why."""
    try:
        decisions = unchanged.decide(db, topology, [k for keys in groups.values() for k in keys])
    except Exception:  # noqa: BLE001 - when in doubt, run: a decision that cannot be made skips nothing
        return
    skipped = [d for d in decisions.values() if d.skip]
    if not skipped:
        return
    for target in list(groups):
        groups[target] = [k for k in groups[target] if not decisions[k].skip]
        if not groups[target]:
            del groups[target]
    _mark_skipped(instance, skipped, outcomes, tags)


def _mark_skipped(instance: dg.DagsterInstance | None, skipped: list[unchanged.Decision],
                  outcomes: dict[str, PairOutcome], tags: dict[str, str],
                  quiet: list[probe.SideVerdict] = ()) -> None:
    """Say on each skipped pair's outcome why, and observe it on its asset (and the tenant sides not run)."""
    for d in skipped:
        outcomes[d.pair_key].unchanged = (f"{d.reason} (cycle {d.recorded_cycle}): no run needed; "
                                          "`xts sync --full` runs it anyway")
    if instance is not None:
        observe_unchanged(instance, skipped, tags, quiet)
    else:
        with cli_instance() as inst:
            observe_unchanged(inst, skipped, tags, quiet)


def observe_unchanged(instance: dg.DagsterInstance, decisions: list[unchanged.Decision], tags: dict[str, str],
                      quiet: list[probe.SideVerdict] = ()) -> None:
    """Record on each pair's asset that this cycle skipped it, and on each tenant side's asset partition that
    its run was not needed (runless events: the UI shows why no run)."""
    cycle = tags.get(CYCLE_TAG, "")
    for d in decisions:
        instance.report_runless_asset_event(unchanged_observation(d, cycle))
    for v in quiet:
        instance.report_runless_asset_event(probe_observation(v, cycle))


def sync_in_process(config: str | Path, sandbox: str | None, db: str | None, pair_keys: list[str] | None,
                    dry_run: bool, workers: int | None = None,
                    tags: dict[str, str] | None = None, full: bool = False) -> list[PairOutcome]:
    """Run one cycle of `config`'s definitions against the instance in $DAGSTER_HOME.

    `workers` (default `default_workers()`): how many tenants, then targets, run at once in worker
    processes; 1 keeps every run in this process, one after another. With workers, this process only
    orchestrates: the workers build the definitions and open the instance, so it never imports the step
    libraries (pandas, pandera, the checks) the fork server has already loaded for them.
    """
    workers = default_workers() if workers is None else workers
    from assets.resources import load_topology

    sandbox = str(Path(sandbox).absolute()) if sandbox else None
    topology = load_topology(str(Path(config).absolute()), sandbox)
    db_path = str(Path(db).absolute()) if db else str(paths.duckdb_path(topology))  # as build_definitions
    spec = CycleSpec(str(Path(config).absolute()), sandbox, db_path, tuple(sorted(os.environ.items())))
    if workers > 1:
        _init_instance_storage()
        return run_cycle(None, None, topology, db_path, pair_keys, dry_run, spec=spec, workers=workers, tags=tags,
                         full=full)
    from assets.definitions import build_definitions

    defs = build_definitions(config, sandbox, db_path)
    with cli_instance() as instance:
        return run_cycle(defs, instance, topology, db_path, pair_keys, dry_run, spec=spec, workers=workers,
                         tags=tags, full=full)
