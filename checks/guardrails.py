"""The target-side guardrails as blocking asset checks on provisioning_plan (issue 6).

Thin: xts_pipeline.guardrails does the work. One multi-asset check evaluates every guardrail of a pair
once (the plan is read once) and reports one check result per guardrail, plus the pair's quarantine.

Severity: a result that must stop the pair (volume, deletions, sources, quarantine, or a per-user
guardrail set to block_cycle) fails at ERROR, which checks.status turns into "apply nothing". A per-user
guardrail set to block_user fails at WARN: the offending users are written to plan_exclusions, apply
logs them as Skipped with the reason, and the rest of the plan proceeds. `warn` also fails at WARN.

When the pair is stopped in a run that would apply, Dagster skips applied_changes, so the check itself
logs every planned write as blocked (Skipped "blocked: ..."; deletes and disables as Entra's StagedDelete) with the reason.
"""


from pathlib import Path
from typing import Any

import dagster as dg

from assets.sync import APPLIED, pair_spec
from xts_pipeline.apply import log_blocked
from xts_pipeline.guardrails import quarantine
from xts_pipeline.guardrails.approvals import approve_command as _approve_command
from xts_pipeline.guardrails.approvals import (
    find_approval,
    plan_fingerprint,
    record_approved_cycle,
    stored_fingerprint,
)
from xts_pipeline.guardrails.inputs import GUARDRAIL_NAMES, load_pair_inputs, record_exclusions
from xts_pipeline.guardrails.report import GuardrailResult
from xts_pipeline.guardrails.runner import run_guardrails

CHECK_PREFIX = "guardrail_"
CHECK_NAMES = (*GUARDRAIL_NAMES, "quarantine")
DESCRIPTIONS = {
    "sources": "Only sources the target lists, with inbound isSyncAllowed=true, may write.",
    "loop_guard": "Users who are B2B in the source (Invitation, Guest, #EXT#) never sync.",
    "volume": "Creates per cycle (abs and % of target), per target over a rolling window from every source, "
              "B2B users per source and per target, updates per cycle.",
    "deletions": "Accidental-deletion threshold: disables + deletes per cycle.",
    "impersonation": "No incoming user may resemble a protected identity of the target.",
    "privilege": "No incoming user may land in a privileged dynamic group through its attributes.",
    "attribute_policy": "Allow-lists, deny patterns, max lengths and mail domains of the target.",
    "attribute_validity": "Every written value within Graph's limits; no control characters, no bidi controls in names.",
    "quarantine": "A quarantined pair is skipped until its back-off retry or `xts release`.",
}


def config_args(config_path: str | None) -> list[str]:
    """`--config PATH` unless the topology is the packaged demo (which every command finds by default)."""
    from xts_pipeline.paths import default_config

    if not config_path or Path(config_path).resolve() == default_config():
        return []
    return ["--config", str(Path(config_path).resolve())]


def approve_command(pair_name: str, fingerprint: str, config_path: str | None = None) -> str:
    """The exact, paste-safe command that approves this plan (metadata, descriptions and `xts sync`)."""
    return _approve_command(pair_name, fingerprint, config_args(config_path))


def release_command(pair_name: str, config_path: str | None = None) -> str:
    from xts_pipeline.paths import shell_command

    return shell_command("xts", "release", *config_args(config_path), "--pair", pair_name)


def _metadata(meta: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in meta.items():
        if isinstance(v, dict | list):
            out[k] = dg.MetadataValue.json(v)
        elif v is not None:
            out[k] = v
    return out


def _severity(result: GuardrailResult) -> dg.AssetCheckSeverity:
    stops_pair = result.severity == "ERROR" and (result.scope == "pair" or result.blocks_cycle)
    return dg.AssetCheckSeverity.ERROR if stops_pair else dg.AssetCheckSeverity.WARN


def _applies_in_this_run(context: dg.AssetCheckExecutionContext) -> bool:
    """Is applied_changes part of this run? A dry run shows a blocked plan but logs no held writes."""
    try:
        return APPLIED in context.op_execution_context.job_def.asset_layer.selected_asset_keys
    except Exception:  # noqa: BLE001 - unknown run shape: log, since held writes in the log are harmless
        return True


def _quarantine_result(plan_key: dg.AssetKey, pair_name: str, skip: quarantine.SkipDecision,
                       policy: Any, config_path: str | None = None) -> dg.AssetCheckResult:
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
        meta["release_with"] = release_command(pair_name, config_path)
    description = skip.message if active else f"{pair_name}: not quarantined"
    return dg.AssetCheckResult(check_name=CHECK_PREFIX + "quarantine", asset_key=plan_key, passed=not skip.skipped,
                               severity=dg.AssetCheckSeverity.ERROR, description=description,
                               metadata=_metadata(meta))


def build_guardrail_checks(plan_key: dg.AssetKey, pool: str | None = "duckdb",
                           partitions_def: dg.PartitionsDefinition | None = None) -> dg.AssetChecksDefinition:
    """One multi-asset check over `plan_key` (partitioned by pair key) yielding a result per guardrail."""
    # Partitioned like the plan (by pair), so each guardrail's result is shown per pair in the Checks tab.
    specs = [dg.AssetCheckSpec(CHECK_PREFIX + n, asset=plan_key, blocking=True, description=DESCRIPTIONS[n],
                               partitions_def=partitions_def) for n in CHECK_NAMES]

    @dg.multi_asset_check(specs=specs, name="guardrails", required_resource_keys={"duckdb", "topology"},
                          pool=pool, can_subset=False)
    def guardrails(context: dg.AssetCheckExecutionContext):
        topo = context.resources.topology.load()
        pair = topo.pair(context.partition_key)
        policy = topo.inbound_policy(pair.target)
        db = context.resources.duckdb.db()
        with context.resources.duckdb.connect() as con:
            inputs = load_pair_inputs(con, pair.key, pair.source, pair.target, policy.volume.window_hours,
                                      [p.key for p in topo.pairs() if p.target == pair.target])
            fingerprint = stored_fingerprint(con, pair.key) or plan_fingerprint(inputs.plan_rows)
            approval = find_approval(con, pair.key, fingerprint)
            skip = quarantine.is_skipped(con, pair.key)
        report = run_guardrails(inputs, policy, approval, fingerprint=fingerprint,  # no connection held meanwhile
                                config_args=config_args(context.resources.topology.config_path))
        with context.resources.duckdb.connect() as con:
            excluded = record_exclusions(con, report)
            if approval is not None and not report.blocked and inputs.plan_rows:
                record_approved_cycle(con, pair.key, inputs.plan_rows[0].get("cycle_id"), report.fingerprint)
        command = approve_command(pair.name, report.fingerprint, context.resources.topology.config_path)
        stops = [r for r in report.results if r.blocking]
        if stops or skip.skipped:
            causes = [f"{CHECK_PREFIX}{r.name}: {r.message}" for r in stops]
            if skip.skipped:
                causes.append(f"{CHECK_PREFIX}quarantine: {skip.message}")
            if any(r.approvable and command not in r.message for r in stops):  # say it once
                causes.append(f"approve this exact plan with: {command}")
            held = log_blocked(db, pair_spec(topo, pair.key), "; ".join(causes)) if _applies_in_this_run(context) else 0
            context.log.warning(f"guardrails block {pair.name}: {held} planned write(s) logged Skipped as blocked; "
                                + "; ".join(causes))
        context.log.info(f"guardrails on {pair.name}: {excluded} user(s) excluded; blocked={report.blocked}; "
                         f"plan {report.fingerprint}")
        for result in report.results:
            severity = _severity(result)
            meta = {**result.to_metadata(), "pair": pair.name, "plan_fingerprint": report.fingerprint,
                    "severity": severity.value}
            if result.scope == "user":
                meta.pop("limit", None)  # per-user guardrails hold users; they have no threshold to breach
            # Check results are per run, not per partition, in the UI: every description names its pair.
            description = result.message if pair.name in result.message else f"{pair.name}: {result.message}"
            if not result.passed and severity == dg.AssetCheckSeverity.WARN and result.scope == "user":
                description = (f"{len(result.blocked_user_ids)} user(s) held (logged Skipped); the rest of the "
                               f"plan applies. {description}")
            if result.blocking and result.approvable:
                meta["approve_with"] = command
                description = f"{description}. To approve this exact plan: {command}"
            if result.warnings:
                description = f"{description} (WARN: {'; '.join(result.warnings)})"
            yield dg.AssetCheckResult(
                check_name=CHECK_PREFIX + result.name, asset_key=plan_key, passed=result.passed,
                severity=_severity(result), description=description[:2000], metadata=_metadata(meta),
            )
        yield _quarantine_result(plan_key, pair.name, skip, policy.quarantine, context.resources.topology.config_path)

    return guardrails
