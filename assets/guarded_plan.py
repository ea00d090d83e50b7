"""The guarded plan: the guardrails' verdicts on one pair's plan, recorded once, between plan and apply.

provisioning_plan -> guarded_plan -> applied_changes, partitioned per pair. This step runs every guardrail
over the stored plan once (xts_pipeline.guardrails.runner), records the verdicts and the users held in
DuckDB (xts_pipeline.guardrails.verdicts, for this plan's cycle and fingerprint), and reports one check
result per guardrail from that report (checks/guardrails.py).

A block is an expected outcome, not an error: when a verdict stops the pair the step succeeds, its checks
fail with the message and the approve command, and it yields no output (the asset is `skippable`), so
Dagster *skips* applied_changes in this run: no failed step, no stack trace. Apply also reads the same
verdicts from the store before writing, so materializing it alone, or after a newer plan the guardrails
have not judged, refuses to write. Real errors (a bug, an unreadable store) still fail the step.
"""

from typing import Any

import dagster as dg

from assets.lease_hook import pair_step
from assets.metadata import counts_md
from assets.sync import APPLIED, DUCKDB_POOL, GUARDED, PLAN, pair_spec
from assets.topology_assets import owners
from checks.guardrails import CHECK_PREFIX, approve_command, check_results, guardrail_check_specs
from xts_pipeline import plan_meta
from xts_pipeline.apply import log_blocked
from xts_pipeline.guardrails import quarantine, verdicts
from xts_pipeline.guardrails.approvals import find_approval, record_approved_cycle
from xts_pipeline.guardrails.inputs import load_pair_inputs
from xts_pipeline.guardrails.runner import GuardrailReport, run_guardrails
from xts_pipeline.paths import config_args, release_command
from xts_pipeline.vocabulary import plan_fingerprint


def _applies_in_this_run(context: dg.AssetExecutionContext) -> bool:
    """Is applied_changes part of this run? A dry run shows a blocked plan but logs no held writes."""
    try:
        return APPLIED in context.op_execution_context.job_def.asset_layer.selected_asset_keys
    except Exception:  # noqa: BLE001 - unknown run shape: log, since held writes in the log are harmless
        return True


def _quarantine_verdict(pair_name: str, skip: quarantine.SkipDecision, policy: Any,
                        args: list[str]) -> verdicts.Verdict:
    state = skip.state
    active = state is not None and state.active
    meta: dict[str, Any] = {
        "pair": pair_name, "status": state.status if state else "never quarantined",
        "backoff_hours": list(policy.backoff_hours), "disable_after_days": policy.disable_after_days}
    if state is not None:
        meta.update(reason=state.reason, since=str(state.since), attempts=state.attempts,
                    next_retry_at=str(state.next_retry_at) if state.next_retry_at else None,
                    released_at=str(state.released_at) if state.released_at else None,
                    released_by=state.released_by)
    if active:
        meta["release_with"] = release_command(pair_name, args)
    message = skip.message if active else f"{pair_name}: not quarantined"
    return verdicts.Verdict(verdicts.QUARANTINE, not skip.skipped, skip.skipped, message, "ERROR", None, meta)


def _report(pair_key: str, cycle_id: str | None, guard: GuardrailReport, command: str,
            quarantined: verdicts.Verdict) -> verdicts.Report:
    ordered = [verdicts.from_result(r, command) for r in guard.results]
    return verdicts.Report(pair_key, cycle_id, guard.fingerprint, (*ordered, quarantined),
                           held_users=len({r["change_id"] for r in guard.exclusions()}))


def _verdicts_md(report: verdicts.Report) -> dg.MetadataValue:
    rows = ["| guardrail | verdict | message |", "|---|---|---|"]
    for v in report.verdicts:
        word = "passed" if v.passed else ("blocks the pair" if v.stops_pair else
                                          "holds users" if v.metadata.get("scope") == "user" else "warns")
        rows.append(f"| {CHECK_PREFIX}{v.check_name} | {word} | {v.message.replace('|', '/')[:300]} |")
    return dg.MetadataValue.md("\n".join(rows))


def _judge(context: dg.AssetExecutionContext, topo: Any, pair: Any, policy: Any,
           config_path: str | None) -> verdicts.Report:
    """Run the guardrails over the stored plan once and record the report (verdicts and holds) in DuckDB."""
    args = config_args(config_path)
    with context.resources.duckdb.connect() as con:
        inputs = load_pair_inputs(con, pair.key, pair.source, pair.target, policy.volume.window_hours,
                                  [p.key for p in topo.pairs() if p.target == pair.target])
        # the stored fingerprint; without one (an older file) the rows were read whole and give it
        fingerprint = inputs.fingerprint or plan_fingerprint(inputs.plan_rows)
        meta = plan_meta.read(con, pair.key)
        approval = find_approval(con, pair.key, fingerprint)
        skip = quarantine.is_skipped(con, pair.key, config_args=args)
    guard = run_guardrails(inputs, policy, approval, fingerprint=fingerprint,  # no connection held meanwhile
                           config_args=args)
    command = approve_command(pair.name, guard.fingerprint, config_path)
    report = _report(pair.key, meta.cycle_id if meta else None, guard, command,
                     _quarantine_verdict(pair.name, skip, policy.quarantine, args))
    with context.resources.duckdb.connect() as con:
        verdicts.record(con, report, guard.exclusions())
        if approval is not None and not report.blocked and inputs.plan_rows:
            record_approved_cycle(con, pair.key, inputs.plan_rows[0].get("cycle_id"), guard.fingerprint)
    return report


def build_guarded_plan(pairs: dg.PartitionsDefinition, pool: str | None = DUCKDB_POOL) -> dg.AssetsDefinition:
    """The guarded-plan asset with its guardrail checks (they must share its step: Dagster skips the checks
    of an asset whose step yields no output, and a block must still show as failed checks)."""
    spec = dg.AssetSpec(GUARDED, deps=[PLAN], group_name="pair", kinds={"duckdb", "python"}, skippable=True,
                        code_version="1", owners=owners(),
                        description="The plan as the target's guardrails judged it: verdicts and held users "
                                    "(not materialized when a guardrail blocks the pair, so apply is skipped)")

    @dg.multi_asset(specs=[spec], check_specs=guardrail_check_specs(GUARDED, pairs), name="guarded_plan",
                    partitions_def=pairs, required_resource_keys={"duckdb", "topology"}, pool=pool,
                    can_subset=False)
    def guarded_plan(context: dg.AssetExecutionContext):
        topo = context.resources.topology.load()
        pair = topo.pair(context.partition_key)
        policy = topo.inbound_policy(pair.target)
        config_path = context.resources.topology.config_path
        db = context.resources.duckdb.db()
        with pair_step(context, db, pair.key, "guarded_plan"):
            report = _judge(context, topo, pair, policy, config_path)
            stops = report.stops()
            causes = [f"{CHECK_PREFIX}{v.check_name}: {v.message}" for v in stops]
            # Dagster skips apply in this run, so its planned writes are logged Skipped as blocked here (not in
            # a dry run: that is a preview).
            held = (log_blocked(db, pair_spec(topo, pair.key), "; ".join(causes))
                    if stops and _applies_in_this_run(context) else 0)
        md: dict[str, Any] = {
            "pair": pair.name, "plan_fingerprint": report.fingerprint, "cycle_id": report.cycle_id or "",
            "status": "blocked" if stops else "passed", "held_users": dg.MetadataValue.int(report.held_users),
            "pair_blocked_by": ", ".join(CHECK_PREFIX + v.check_name for v in stops)
                               or "nothing: no pair guardrail blocks this plan",
            "verdicts": _verdicts_md(report)}
        commands = sorted({v.approve_command for v in stops if v.approve_command})
        if commands:
            md["approve_with"] = commands[0]
        if stops:
            md["not_applied"] = dg.MetadataValue.int(held)
            context.log.warning(f"guardrails block {pair.name}: apply is skipped; {held} planned write(s) logged "
                                "Skipped as blocked; " + "; ".join(causes)
                                + (f"; approve this exact plan with: {commands[0]}" if commands
                                   and all(commands[0] not in c for c in causes) else ""))
            # No output: the asset is skippable, so Dagster skips applied_changes. The report still shows.
            context.log_event(dg.AssetObservation(asset_key=GUARDED, partition=context.partition_key, metadata=md))
        else:
            context.log.info(f"guardrails on {pair.name}: pass; {report.held_users} user(s) held; "
                             f"plan {report.fingerprint}")
            yield dg.MaterializeResult(asset_key=GUARDED, metadata={**md, "counts": counts_md(
                {"guardrails passed": sum(v.passed for v in report.verdicts), "users held": report.held_users})})
        yield from check_results(GUARDED, pair.name, report)

    return guarded_plan
