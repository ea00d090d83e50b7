"""The guardrail checks: one per guardrail (and the quarantine), shown on the guarded plan, per pair.

They only observe. assets/guarded_plan.py runs the guardrails once per plan and records the verdicts and
holds in DuckDB (xts_pipeline.guardrails.verdicts); each check here turns one recorded verdict into an
asset check result: passed or failed, with its message and, where an approval of this exact plan would
let it through, the complete paste-safe approve command, said once. The checks write nothing and decide
nothing: apply reads the same verdicts from the store.

Severity: a verdict that stops the pair (volume, deletions, sources, quarantine, or a per-user guardrail
set to block_cycle) fails at ERROR. A per-user guardrail set to block_user fails at WARN: its users are
held (logged Skipped with the reason) and the rest of the plan applies. `warn` also fails at WARN.
The checks are not Dagster-blocking (a blocking check raises, which shows an expected outcome as a
crash with a stack trace); the guarded step withholds its output instead, so Dagster skips apply.
"""

from typing import Any

import dagster as dg

from xts_pipeline.guardrails.approvals import approve_command as _approve_command
from xts_pipeline.guardrails.verdicts import GUARDRAIL_NAMES, QUARANTINE, Report, Verdict
from xts_pipeline.paths import config_args

CHECK_PREFIX = "guardrail_"
CHECK_NAMES = (*GUARDRAIL_NAMES, QUARANTINE)
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


def approve_command(pair_name: str, fingerprint: str, config_path: str | None = None) -> str:
    """The exact, paste-safe command that approves this plan (metadata, descriptions and `xts sync`)."""
    return _approve_command(pair_name, fingerprint, config_args(config_path))



def guardrail_check_specs(asset_key: dg.AssetKey,
                          partitions_def: dg.PartitionsDefinition | None = None) -> list[dg.AssetCheckSpec]:
    """One check per guardrail and the quarantine, partitioned like the asset (by pair): the Checks tab shows
    each pair's latest result."""
    return [dg.AssetCheckSpec(CHECK_PREFIX + n, asset=asset_key, description=DESCRIPTIONS[n],
                              partitions_def=partitions_def) for n in CHECK_NAMES]


def _metadata(meta: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in meta.items():
        if isinstance(v, dict | list):
            out[k] = dg.MetadataValue.json(v)
        elif v is not None:
            out[k] = v
    return out


def describe(pair_name: str, v: Verdict) -> str:
    """The check's description: its pair, what it decided, and the approve command exactly once."""
    description = v.message if pair_name in v.message else f"{pair_name}: {v.message}"
    if v.check_name == QUARANTINE:
        return description
    meta = v.metadata
    if not v.passed and v.severity == "WARN" and meta.get("scope") == "user":
        description = (f"{meta.get('blocked_users', 0)} user(s) held (logged Skipped); the rest of the "
                       f"plan applies. {description}")
    if meta.get("warnings"):
        description = f"{description} (WARN: {'; '.join(meta['warnings'])})"
    if v.approve_command and v.approve_command not in description:  # said once, and last: it pastes to the end
        description = f"{description}. To approve this exact plan: {v.approve_command}"
    return description


def check_results(asset_key: dg.AssetKey, pair_name: str, report: Report) -> list[dg.AssetCheckResult]:
    """One result per recorded verdict, read from the guarded plan's report."""
    out = []
    for v in report.verdicts:
        severity = dg.AssetCheckSeverity.ERROR if v.severity == "ERROR" else dg.AssetCheckSeverity.WARN
        meta = {**v.metadata, "pair": pair_name, "plan_fingerprint": report.fingerprint, "severity": severity.value}
        if meta.get("scope") == "user":
            meta.pop("limit", None)  # per-user guardrails hold users; they have no threshold to breach
        if v.approve_command:
            meta["approve_with"] = v.approve_command
        out.append(dg.AssetCheckResult(
            check_name=CHECK_PREFIX + v.check_name, asset_key=asset_key, passed=v.passed, severity=severity,
            description=describe(pair_name, v)[:2000], metadata=_metadata(meta)))
    return out
