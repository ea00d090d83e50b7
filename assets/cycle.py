"""One sync cycle run in process, as the CLI and the demo do: source runs, target runs, then pair runs.

Each step is a real Dagster run of the definitions' jobs against the given instance, so the runs, asset
materializations and check results show up in the UI like scheduled ones.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from xts_pipeline import store
from xts_pipeline.guardrails.quarantine import skipped_pairs

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
    quarantined: str = ""  # the quarantine status when the cycle skipped this pair
    fingerprint: str = ""  # the plan's fingerprint (what `xts approve` takes)
    approve_command: str = ""  # set when an approval would let this exact plan through
    held: dict[str, int] = field(default_factory=dict)  # users held by a per-user guardrail, by check


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
    """Failed blocking checks of a pair run, and the approve command if one of them can be approved."""
    graph = defs.resolve_asset_graph()
    failed, approve = [], ""
    for ev in result.get_asset_check_evaluations():
        spec = graph.get_check_spec(ev.asset_check_key)
        if not ev.passed and spec.blocking and ev.severity == dg.AssetCheckSeverity.ERROR:
            failed.append(f"{ev.check_name}: {ev.description or 'failed'}")
            cmd = ev.metadata.get("approve_with")
            approve = approve or (str(cmd.value) if cmd is not None else "")
    return failed, approve


def _pair_counts(db: str | Path, pair_key: str, dry_run: bool, o: PairOutcome) -> None:
    """Fill the outcome's counts, blocked reason, fingerprint and guardrail holds from DuckDB."""
    with store.connect(db) as con:
        meta = con.execute("SELECT cycle_id, blocked_reason, fingerprint FROM plan_meta WHERE pair_key = ?",
                           [pair_key]).fetchone()
        if meta is None:
            return
        cycle, blocked_reason, o.fingerprint = meta[0], meta[1] or "", meta[2] or ""
        o.blocked_reason = blocked_reason
        plan = dict(con.execute("SELECT action, count(*) FROM plan WHERE pair_key = ? GROUP BY 1",
                                [pair_key]).fetchall())
        o.held = {k: int(v) for k, v in con.execute(
            "SELECT check_name, count(*) FROM plan_exclusions WHERE pair_key = ? GROUP BY 1 ORDER BY 1",
            [pair_key]).fetchall()}
        if dry_run:
            o.counts = {c: int(plan.get(c.rstrip("s") if c != "skips" else "skip", 0)) for c in SUMMARY_COLUMNS}
            o.counts.update(failures=0, blocked=0)
            return
        log = dict(con.execute(
            """SELECT operation || '/' || status, count(*) FROM provisioning_log WHERE pair_key = ? AND cycle_id = ?
               GROUP BY 1""", [pair_key, cycle]).fetchall())
        blocked = con.execute(
            """SELECT count(*) FROM provisioning_log WHERE pair_key = ? AND cycle_id = ? AND status = 'Skipped'
               AND (reason LIKE 'blocked:%' OR reason LIKE 'held by%')""", [pair_key, cycle]).fetchone()[0]
    ok = {op: int(log.get(f"{op}/Success", 0)) for op in ("create", "update", "disable", "delete", "restore")}
    o.counts = {"creates": ok["create"], "updates": ok["update"], "disables": ok["disable"],
                "deletes": ok["delete"], "restores": ok["restore"], "skips": int(plan.get("skip", 0)),
                "failures": sum(int(v) for k, v in log.items() if k.endswith("/Failure")), "blocked": int(blocked)}


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
    held = {} if dry_run else skipped_pairs(db, [p.key for p in pairs])
    for p in pairs:
        o = PairOutcome(pair_key=p.key, dry_run=dry_run)
        o.errors = side_ok[("source", p.source)] + side_ok[("target", p.target)]
        if p.key in held:
            o.quarantined = held[p.key]  # skipped like a scheduled cycle skips it
        if o.errors or o.quarantined:
            out.append(o)
            continue
        res = pair_job.execute_in_process(partition_key=p.key, instance=instance, raise_on_error=False, tags=tags)
        o.ran = True
        o.failed_checks, o.approve_command = _blocking_failed(res, defs)
        if not res.success:
            o.errors = _failures(res)
        _pair_counts(db, p.key, dry_run, o)
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
        status = "error" if o.errors else "quarantined" if o.quarantined else (
            "blocked" if o.failed_checks or o.blocked_reason else ("planned" if o.dry_run else "ok"))
        rows.append([o.pair_key.replace("__", "->"), *[o.counts[c] for c in SUMMARY_COLUMNS], status])
    text = tabulate(rows, headers=["pair", *SUMMARY_COLUMNS, "status"], tablefmt="github")
    notes = []
    for o in outcomes:
        shown = o.pair_key.replace("__", "->")
        msgs = [*o.errors, *o.failed_checks] + [m for m in (o.blocked_reason, o.quarantined) if m]
        notes += [f"  {shown}: {msg.splitlines()[0] if msg else ''}" for msg in msgs]
        if o.held:
            notes.append(f"  {shown}: held per user by guardrails (logged Skipped with the reason): "
                         + ", ".join(f"{k} {v}" for k, v in o.held.items()))
        if o.failed_checks and o.fingerprint:
            notes.append(f"  {shown}: plan fingerprint {o.fingerprint}"
                         + (f"; to approve it: {o.approve_command}" if o.approve_command else ""))
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
