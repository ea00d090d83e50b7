"""The target-side guardrails as blocking asset checks on provisioning_plan (issue 6).

Thin: xts_pipeline.guardrails does the work. One multi-asset check evaluates every guardrail of a pair
once (the plan is read once) and reports one check result per guardrail, plus the pair's quarantine.

Severity: a result that must stop the pair (volume, deletions, sources, quarantine, or a per-user
guardrail set to block_cycle) fails at ERROR, which checks.status turns into "apply nothing". A per-user
guardrail set to block_user fails at WARN: the offending users are written to plan_exclusions, apply
logs them as Skipped with the reason, and the rest of the plan proceeds. `warn` also fails at WARN.
"""


from typing import Any

import dagster as dg

from xts_pipeline.guardrails import quarantine
from xts_pipeline.guardrails.approvals import find_approval, plan_fingerprint
from xts_pipeline.guardrails.inputs import GUARDRAIL_NAMES, load_pair_inputs, record_exclusions
from xts_pipeline.guardrails.report import GuardrailResult
from xts_pipeline.guardrails.rows import parsed
from xts_pipeline.guardrails.runner import run_guardrails

CHECK_PREFIX = "guardrail_"
CHECK_NAMES = (*GUARDRAIL_NAMES, "quarantine")
DESCRIPTIONS = {
    "sources": "Only sources the target lists, with inbound isSyncAllowed=true, may write.",
    "loop_guard": "Users who are B2B in the source (Invitation, Guest, #EXT#) never sync.",
    "volume": "Creates per cycle (abs and % of target), B2B users per source, updates per cycle.",
    "deletions": "Accidental-deletion threshold: disables + deletes per cycle.",
    "impersonation": "No incoming user may resemble a protected identity of the target.",
    "privilege": "No incoming user may land in a privileged dynamic group through its attributes.",
    "attribute_policy": "Allow-lists, deny patterns, max lengths and mail domains of the target.",
    "quarantine": "A quarantined pair is skipped until its back-off retry or `xts release`.",
}


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


def build_guardrail_checks(plan_key: dg.AssetKey, pool: str | None = "duckdb") -> dg.AssetChecksDefinition:
    """One multi-asset check over `plan_key` (partitioned by pair key) yielding a result per guardrail."""
    specs = [dg.AssetCheckSpec(CHECK_PREFIX + n, asset=plan_key, blocking=True, description=DESCRIPTIONS[n])
             for n in CHECK_NAMES]

    @dg.multi_asset_check(specs=specs, name="guardrails", required_resource_keys={"duckdb", "topology"},
                          pool=pool, can_subset=False)
    def guardrails(context: dg.AssetCheckExecutionContext):
        topo = context.resources.topology.load()
        pair = topo.pair(context.partition_key)
        policy = topo.inbound_policy(pair.target)
        with context.resources.duckdb.connect() as con:
            inputs = load_pair_inputs(con, pair.key, pair.source, pair.target)
            inputs.plan_rows = parsed(inputs.plan_rows)
            fingerprint = plan_fingerprint(inputs.plan_rows)
            approval = find_approval(con, pair.key, fingerprint)
            skip = quarantine.is_skipped(con, pair.key)
        report = run_guardrails(inputs, policy, approval, fingerprint=fingerprint)  # no connection held while computing
        with context.resources.duckdb.connect() as con:
            excluded = record_exclusions(con, report)
        common = {"pair": pair.name, "plan_fingerprint": report.fingerprint,
                  "approve_with": f'xts approve --pair {pair.name} --plan {report.fingerprint} --reason "..."'}
        context.log.info(f"guardrails on {pair.name}: {excluded} user(s) excluded; "
                         f"blocked={report.blocked}; plan {report.fingerprint}")
        for result in report.results:
            yield dg.AssetCheckResult(
                check_name=CHECK_PREFIX + result.name, asset_key=plan_key, passed=result.passed,
                severity=_severity(result), description=result.message[:1000],
                metadata=_metadata({**result.to_metadata(), **common}),
            )
        yield dg.AssetCheckResult(
            check_name=CHECK_PREFIX + "quarantine", asset_key=plan_key, passed=not skip.skipped,
            severity=dg.AssetCheckSeverity.ERROR, description=skip.message,
            metadata=_metadata({"pair": pair.name, "status": skip.state.status if skip.state else "active",
                                "next_retry_at": str(skip.state.next_retry_at) if skip.state else None,
                                "attempts": skip.state.attempts if skip.state else 0}),
        )

    return guardrails
