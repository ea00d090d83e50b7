"""Run every guardrail over one pair's plan and say what may be applied.

The Dagster layer reads the pair's inputs from DuckDB, calls `run_guardrails`, turns each
`GuardrailResult` into an asset check result, and applies only `report.kept_rows()` when
`report.blocked` is False.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from xts_pipeline.vocabulary import plan_fingerprint

from .approvals import apply_approval, approve_command
from .attribute_policy import check_attribute_policy
from .gc_pause import gc_paused
from .impersonation import check_impersonation, protected_identities
from .policy import InboundPolicy
from .privilege import Evaluate, Properties, check_privilege
from .report import GuardrailResult
from .rows import parsed, written
from .sources import check_sources, loop_guard
from .validity import check_attribute_validity
from .volume import TargetVolume, check_deletions, check_volume


@dataclass
class PairInputs:
    """Everything the guardrails read about one pair. Ids of users are source object ids."""

    pair_key: str
    source: str
    target: str
    plan_rows: list[Mapping[str, Any]]
    source_users: list[Mapping[str, Any]] = field(default_factory=list)  # source records of plan users
    target_users: list[Mapping[str, Any]] = field(default_factory=list)
    target_groups: list[Mapping[str, Any]] = field(default_factory=list)
    role_assignable_members: Iterable[str] | Mapping[str, str] = ()
    role_holders: Iterable[str] | Mapping[str, str] = ()
    partner_policy: Mapping[str, Any] | None = None
    target_size: int | None = None  # default: len(target_users)
    existing_from_source: int = 0
    notes: list[str] = field(default_factory=list)  # what the target snapshot could not read (shown as warnings)
    verified_domains: frozenset[str] = frozenset()  # the source tenant's verified domains (exemptions trust these)
    target_volume: TargetVolume | None = None  # what the target took from every pair (window and B2B caps)
    # The planner's stored fingerprint of this plan (plan_meta), when the rows were read without the changes
    # of whole-record rows: then it is the plan's fingerprint, which the rows alone no longer give.
    fingerprint: str | None = None


@dataclass(frozen=True)
class GuardrailReport:
    pair_key: str
    fingerprint: str
    results: list[GuardrailResult]
    plan_rows: list[Mapping[str, Any]]
    approval: Mapping[str, Any] | None = None

    @property
    def blocked(self) -> bool:
        """True when nothing may be applied for this pair this cycle."""
        return any(r.blocking for r in self.results)

    @property
    def excluded_user_ids(self) -> frozenset[str]:
        return frozenset().union(*(r.blocked_user_ids for r in self.results))

    def kept_rows(self) -> list[Mapping[str, Any]]:
        """The plan minus users a per-user guardrail removed (empty when the pair is blocked)."""
        if self.blocked:
            return []
        out = self.excluded_user_ids
        return [r for r in self.plan_rows if str(r.get("source_object_id")) not in out or removal_only(r)]

    def exclusions(self) -> list[dict[str, Any]]:
        """Rows for `plan_exclusions` / the provisioning log (status Skipped), one per removed plan row."""
        why: dict[str, tuple[str, str]] = {}
        for res in self.results:
            for o in res.offenders:
                sid = str(o.get("source_object_id"))
                if sid in res.blocked_user_ids:
                    why.setdefault(sid, (res.name, _reason(res.name, o)))
            for sid in res.blocked_user_ids:
                why.setdefault(sid, (res.name, res.message))
        return [
            {"pair_key": self.pair_key, "cycle_id": r.get("cycle_id"), "change_id": r.get("change_id"),
             "source_object_id": r.get("source_object_id"), "check_name": why[sid][0], "reason": why[sid][1]}
            for r in self.plan_rows
            if (sid := str(r.get("source_object_id"))) in why and not removal_only(r)
        ]


def removal_only(row: Mapping[str, Any]) -> bool:
    """A delete, or a disable that writes accountEnabled=false and nothing else: safe whatever else the user
    is held for, so a per-user hold never keeps an account enabled (the pair-wide deletion cap still counts it)."""
    action = row.get("action")
    return action == "delete" or (action == "disable" and set(written(row)) <= {"accountEnabled"})


def _reason(name: str, o: Mapping[str, Any]) -> str:
    if o.get("reason"):
        return str(o["reason"])
    if name == "impersonation":
        return f"{o['field']} '{o['value']}' resembles protected '{o['protected']}' ({o['protected_because']}): {o['how']}"
    if name == "privilege":
        attrs = ", ".join(f"{k}='{v}'" for k, v in o["attributes"].items())
        return f"would join privileged group '{o['group']}' ({o['group_is']}) through {attrs}: rule {o['rule']}"
    if name == "attribute_policy":
        return f"{o['why']} (value '{o['value']}')"
    if name == "loop_guard":
        return "user is B2B in the source (creationType Invitation, userType Guest, #EXT# UPN or externalUserState)"
    return name


def _with_warnings(result: GuardrailResult, notes: list[str]) -> GuardrailResult:
    """Attach the snapshot's notes (e.g. role holders unreadable) to the guardrail they weaken."""
    return replace(result, warnings=(*result.warnings, *notes)) if notes else result


def run_guardrails(
    inputs: PairInputs,
    policy: InboundPolicy,
    approval: Mapping[str, Any] | None = None,
    evaluate: Evaluate | None = None,
    properties: Properties | None = None,
    fingerprint: str | None = None,
    config_args: Sequence[str] = (),
) -> GuardrailReport:
    """Every guardrail over one pair. Pass the approval found for `plan_fingerprint(plan_rows)`, if any
    (and that fingerprint, to save hashing the plan twice)."""
    with gc_paused():
        return _run(inputs, policy, approval, evaluate, properties, fingerprint, config_args)


def _run(inputs: PairInputs, policy: InboundPolicy, approval: Mapping[str, Any] | None, evaluate: Evaluate | None,
         properties: Properties | None, fingerprint: str | None, config_args: Sequence[str]) -> GuardrailReport:
    rows = parsed(inputs.plan_rows)
    pair = f"{inputs.source}->{inputs.target}"
    fingerprint = fingerprint or inputs.fingerprint or plan_fingerprint(rows)
    protected = protected_identities(policy, inputs.target_users, inputs.role_assignable_members,
                                     inputs.role_holders)
    size = inputs.target_size if inputs.target_size is not None else len(inputs.target_users)
    per_user = [
        loop_guard(inputs.source_users, pair),
        _with_warnings(check_impersonation(rows, protected, policy, inputs.source, inputs.verified_domains),
                       inputs.notes if policy.impersonation.include_directory_role_holders else []),
        check_privilege(rows, inputs.target_groups, policy, evaluate, properties),
        check_attribute_policy(rows, policy),
        check_attribute_validity(rows, policy),
    ]
    held = frozenset().union(*(r.blocked_user_ids for r in per_user))
    results = [
        check_sources(inputs.source, inputs.target, policy, inputs.partner_policy),
        per_user[0],
        check_volume(rows, policy, size, inputs.existing_from_source, pair, inputs.target_volume, held,
                     f"`{approve_command(pair, fingerprint, config_args)}`"),
        check_deletions(rows, policy, inputs.existing_from_source, pair),
        *per_user[1:],
    ]
    return GuardrailReport(inputs.pair_key, fingerprint, apply_approval(results, approval), rows, approval)
