"""One sync cycle run in process, as the CLI and the demo do: source runs, target runs, then pair runs.

Each step is a real Dagster run of the definitions' jobs against the given instance, so the runs, asset
materializations and check results show up in the UI like scheduled ones.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from xts_pipeline import store

SUMMARY_COLUMNS = ("creates", "updates", "disables", "deletes", "restores", "skips", "failures", "blocked")


@dataclass
class PairOutcome:
    """What one pair's cycle did, for the summary table and the exit code."""

    pair_key: str
    ran: bool = False
    dry_run: bool = False
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SUMMARY_COLUMNS, 0))
    failed_checks: list[str] = field(default_factory=list)  # blocking checks that failed
    errors: list[str] = field(default_factory=list)
    blocked_reason: str = ""


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


def _blocking_failed(result: Any, defs: dg.Definitions) -> list[str]:
    graph = defs.resolve_asset_graph()
    failed = []
    for ev in result.get_asset_check_evaluations():
        spec = graph.get_check_spec(ev.asset_check_key)
        if not ev.passed and spec.blocking and ev.severity == dg.AssetCheckSeverity.ERROR:
            failed.append(f"{ev.check_name}: {ev.description or 'failed'}")
    return failed


def _pair_counts(db: str | Path, pair_key: str, dry_run: bool) -> tuple[dict[str, int], str]:
    with store.connect(db) as con:
        meta = con.execute("SELECT cycle_id, blocked_reason FROM plan_meta WHERE pair_key = ?", [pair_key]).fetchone()
        if meta is None:
            return dict.fromkeys(SUMMARY_COLUMNS, 0), ""
        cycle, blocked_reason = meta
        plan = dict(con.execute("SELECT action, count(*) FROM plan WHERE pair_key = ? GROUP BY 1",
                                [pair_key]).fetchall())
        if dry_run:
            counts = {c: int(plan.get(c.rstrip("s") if c != "skips" else "skip", 0)) for c in SUMMARY_COLUMNS}
            counts.update(failures=0, blocked=0)
            return counts, blocked_reason or ""
        log = dict(con.execute(
            """SELECT operation || '/' || status, count(*) FROM provisioning_log WHERE pair_key = ? AND cycle_id = ?
               GROUP BY 1""", [pair_key, cycle]).fetchall())
        blocked = con.execute(
            """SELECT count(*) FROM provisioning_log WHERE pair_key = ? AND cycle_id = ? AND status = 'Skipped'
               AND reason LIKE 'blocked:%'""", [pair_key, cycle]).fetchone()[0]
    ok = {op: int(log.get(f"{op}/Success", 0)) for op in ("create", "update", "disable", "delete", "restore")}
    counts = {"creates": ok["create"], "updates": ok["update"], "disables": ok["disable"], "deletes": ok["delete"],
              "restores": ok["restore"], "skips": int(plan.get("skip", 0)),
              "failures": sum(int(v) for k, v in log.items() if k.endswith("/Failure")), "blocked": int(blocked)}
    return counts, blocked_reason or ""


def run_cycle(defs: dg.Definitions, instance: dg.DagsterInstance, topology: Any, db: str | Path,
              pair_keys: list[str] | None = None, dry_run: bool = False) -> list[PairOutcome]:
    """Extract every source and snapshot every target the pairs need, then run each pair (or its dry run)."""
    pairs = [p for p in topology.pairs() if p.enabled and (pair_keys is None or p.key in pair_keys)]
    tags = {"xts/cycle": "cli", "xts/kind": "cli"}
    side_ok: dict[tuple[str, str], list[str]] = {}
    for kind, job_name, keys in (("source", "source_job", sorted({p.source for p in pairs})),
                                 ("target", "target_job", sorted({p.target for p in pairs}))):
        job = defs.resolve_job_def(job_name)
        for key in keys:
            res = job.execute_in_process(partition_key=key, instance=instance, raise_on_error=False, tags=tags)
            side_ok[(kind, key)] = [] if res.success else _failures(res) or [f"{job_name} {key} failed"]
    out = []
    pair_job = defs.resolve_job_def("pair_dry_run_job" if dry_run else "pair_sync_job")
    for p in pairs:
        o = PairOutcome(pair_key=p.key, dry_run=dry_run)
        o.errors = side_ok[("source", p.source)] + side_ok[("target", p.target)]
        if o.errors:
            out.append(o)
            continue
        res = pair_job.execute_in_process(partition_key=p.key, instance=instance, raise_on_error=False, tags=tags)
        o.ran = True
        o.failed_checks = _blocking_failed(res, defs)
        if not res.success:
            o.errors = _failures(res)
        o.counts, o.blocked_reason = _pair_counts(db, p.key, dry_run)
        if o.failed_checks and not dry_run and not o.counts["blocked"]:
            # A blocking check stopped apply inside the run: every planned write counts as blocked.
            with store.connect(db) as con:
                o.counts["blocked"] = con.execute(
                    "SELECT count(*) FROM plan WHERE pair_key = ? AND action <> 'skip'", [p.key]).fetchone()[0]
        out.append(o)
    return out


def format_summary(outcomes: list[PairOutcome]) -> str:
    """The per-pair summary table the CLI and the demo print."""
    from tabulate import tabulate

    rows = []
    for o in outcomes:
        status = "error" if o.errors else ("blocked" if o.failed_checks or o.blocked_reason else
                                           ("planned" if o.dry_run else "ok"))
        rows.append([o.pair_key.replace("__", "->"), *[o.counts[c] for c in SUMMARY_COLUMNS], status])
    text = tabulate(rows, headers=["pair", *SUMMARY_COLUMNS, "status"], tablefmt="github")
    notes = []
    for o in outcomes:
        for msg in [*o.errors, *o.failed_checks] + ([o.blocked_reason] if o.blocked_reason else []):
            notes.append(f"  {o.pair_key.replace('__', '->')}: {msg.splitlines()[0] if msg else ''}")
    return text + ("\n" + "\n".join(notes) if notes else "")


def sync_in_process(config: str | Path, sandbox: str | None, db: str | None, pair_keys: list[str] | None,
                    dry_run: bool) -> list[PairOutcome]:
    """Build the definitions for `config` and run one cycle against the instance in $DAGSTER_HOME."""
    from assets.resources import load_topology
    from xts_pipeline.definitions import build_definitions

    defs = build_definitions(config, sandbox, db)
    topology = load_topology(str(Path(config).absolute()), str(Path(sandbox).absolute()) if sandbox else None)
    with dg.DagsterInstance.get() as instance:
        return run_cycle(defs, instance, topology, defs.resources["duckdb"].path, pair_keys, dry_run)
