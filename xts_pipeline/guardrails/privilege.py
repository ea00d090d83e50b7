"""Block incoming users whose attribute values would put them in a privileged dynamic group.

The source controls attributes such as `department`; the target's dynamic rules turn attributes into
membership, and a role-assignable group turns membership into admin rights. We evaluate each incoming
user's would-be attributes against the target's privileged dynamic groups before anything is written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from .policy import InboundPolicy
from .report import GuardrailResult, cap, per_user_result
from .rows import desired, incoming, user_ref, written

NAME = "privilege"

Evaluate = Callable[[str, Mapping[str, Any]], bool]
Properties = Callable[[str], set[str]]


@dataclass(frozen=True)
class PrivilegedGroup:
    id: str
    display_name: str
    rule: str
    why: str
    properties: frozenset[str]


def _field(group: Mapping[str, Any], *names: str) -> Any:
    for n in names:
        if n in group:
            return group[n]
    return None


def is_dynamic(group: Mapping[str, Any]) -> bool:
    rule = _field(group, "membershipRule", "membership_rule")
    types = _field(group, "groupTypes", "group_types") or []
    if isinstance(types, str):
        types = orjson.loads(types) if types.startswith("[") else [types]
    return bool(rule) and (not types or "DynamicMembership" in types)


def privileged_groups(
    groups: Iterable[Mapping[str, Any]],
    policy: InboundPolicy,
    properties: Properties | None = None,
) -> tuple[list[PrivilegedGroup], list[str]]:
    """The target's dynamic groups the policy treats as privileged, and warnings for unusable rules.

    Accepts Graph-shaped groups (`membershipRule`, `isAssignableToRole`) or store rows (snake_case).
    A rule the engine cannot parse is skipped with a warning naming the group: the target's own
    broken rule must not stop every sync, and Entra would not evaluate it either.
    """
    if properties is None:
        from xts_pipeline.dynamic_rules import rule_properties as properties
    from_policy = {g.casefold() for g in policy.privilege.privileged_groups}
    out: list[PrivilegedGroup] = []
    warnings: list[str] = []
    for g in groups:
        if not is_dynamic(g):
            continue
        gid = str(_field(g, "id") or "")
        name = str(_field(g, "displayName", "display_name") or gid)
        rule = str(_field(g, "membershipRule", "membership_rule"))
        role_assignable = bool(_field(g, "isAssignableToRole", "is_assignable_to_role"))
        if gid.casefold() in from_policy or name.casefold() in from_policy:
            why = "listed as privileged in the inbound policy"
        elif role_assignable and policy.privilege.treat_role_assignable_as_privileged:
            why = "role-assignable"
        else:
            continue
        try:
            props = frozenset(_bare(p) for p in properties(rule))
        except Exception as exc:  # RuleError, or any engine failure on a rule we did not write
            warnings.append(f"{NAME}: skipped group '{name}' ({gid}): its membership rule cannot be evaluated "
                            f"({exc}); fix the rule in the target tenant")
            continue
        out.append(PrivilegedGroup(gid, name, rule, why, props))
    return out, warnings


def _bare(prop: str) -> str:
    """'user.department' -> 'department' (rule properties name the object; our attributes do not)."""
    return prop.split(".", 1)[1] if prop.lower().startswith(("user.", "device.")) else prop


def find_privilege_grants(
    rows: Iterable[Mapping[str, Any]],
    groups: list[PrivilegedGroup],
    evaluate: Evaluate | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Violations: incoming rows whose would-be attributes satisfy a privileged group's rule.

    An update counts only if it writes one of the rule's properties: otherwise this cycle does not
    change the user's membership.
    """
    explain: Callable[[str, Mapping[str, Any]], list[str]] | None = None
    if evaluate is None:
        from xts_pipeline.dynamic_rules import evaluate_rule as evaluate
        from xts_pipeline.dynamic_rules import explain
    found: list[dict[str, Any]] = []
    warnings: list[str] = []
    broken: set[str] = set()
    for row in incoming(rows):
        attrs = desired(row)
        touched = set(written(row))
        for g in groups:
            if g.id in broken:
                continue
            granting = sorted(g.properties & touched)
            if not granting:
                continue
            try:
                joins = evaluate(g.rule, attrs)
            except Exception as exc:  # an engine error on one group must not crash the cycle
                broken.add(g.id)
                warnings.append(f"{NAME}: skipped group '{g.display_name}' ({g.id}): evaluating its rule "
                                f"failed ({exc}); fix the rule in the target tenant")
                continue
            if joins:
                found.append({
                    **user_ref(row),
                    "group": g.display_name,
                    "group_id": g.id,
                    "group_is": g.why,
                    "rule": cap(g.rule, 200),
                    "attributes": {p: cap(str(attrs.get(p))) for p in granting},
                    "clauses": [cap(c, 200) for c in explain(g.rule, attrs)] if explain else [],
                })
                break
    return found, warnings


def check_privilege(
    rows: Iterable[Mapping[str, Any]],
    groups: Iterable[Mapping[str, Any]],
    policy: InboundPolicy,
    evaluate: Evaluate | None = None,
    properties: Properties | None = None,
) -> GuardrailResult:
    """The privilege-by-attribute guardrail over one pair's plan and the target's groups."""
    privileged, warnings = privileged_groups(groups, policy, properties)
    found, more = find_privilege_grants(rows, privileged, evaluate)
    blocked = {str(v["source_object_id"]) for v in found}
    message = ""
    if found:
        f = found[0]
        attrs = ", ".join(f"{k}='{v}'" for k, v in f["attributes"].items())
        clauses = " and ".join(f["clauses"]) or "the rule"
        message = (
            f"{NAME}: {len(blocked)} incoming user(s) would join a privileged group; first: {f['user']} "
            f"would join '{f['group']}' ({f['group_is']}) through {attrs}: {clauses} holds in rule "
            f"{f['rule']}. Fix the attribute in the source or its mapping, or change the group's rule in the target"
        )
    return per_user_result(
        NAME,
        policy.on_violation.privilege,
        found,
        blocked,
        rule="no incoming user may satisfy the membership rule of a role-assignable or policy-listed "
        "dynamic group",
        message=message,
        warnings=warnings + more,
    )
