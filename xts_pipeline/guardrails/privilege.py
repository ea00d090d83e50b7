"""Block writes after which a user would be in a privileged dynamic group through its attributes.

The source controls attributes such as `department`; the target's dynamic rules turn attributes into
membership, and a role-assignable group turns membership into admin rights. Each incoming write is
judged on the record as it will stand after the write (the target's current values overlaid with the
row's writes), so a target-side attribute the pair does not map keeps its current value. A write is held
when the user satisfies a privileged group's rule after it and did not before; creates, adoptions,
restores and re-enables are judged on their whole record (nothing "before" counts for them).

Fails closed: a privileged group whose rule cannot be parsed or evaluated holds every incoming write
that touches a property named in its rule text, and the result says the guardrail is degraded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import orjson

from .policy import InboundPolicy
from .report import GuardrailResult, cap, per_user_result
from .rows import after, current, incoming, rechecks_whole_record, user_ref, written

NAME = "privilege"

Evaluate = Callable[[str, Mapping[str, Any]], bool]
Properties = Callable[[str], set[str]]

# `user.<prop>` in a rule's text, for rules the engine cannot read (fail closed on what they name).
_RULE_PROPERTY = re.compile(r"\buser\.([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)
# Rule names that read a Graph property of another name (dynamic_rules._USER_PROPERTIES).
_ALIASES = {"physicaldeliveryofficename": "officelocation", "telephonenumber": "businessphones"}


@dataclass(frozen=True)
class PrivilegedGroup:
    id: str
    display_name: str
    rule: str
    why: str
    properties: frozenset[str]  # casefolded Graph property names the rule reads
    error: str | None = None  # set when the rule cannot be parsed/evaluated: the group fails closed


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


def rule_text_properties(rule: str) -> frozenset[str]:
    """Property names a rule's text mentions as `user.<prop>` (casefolded, aliases added): the fail-closed set."""
    names = {m.group(1).casefold() for m in _RULE_PROPERTY.finditer(rule or "")}
    return frozenset(names | {_ALIASES[n] for n in names if n in _ALIASES})


def privileged_groups(
    groups: Iterable[Mapping[str, Any]],
    policy: InboundPolicy,
    properties: Properties | None = None,
) -> tuple[list[PrivilegedGroup], list[str]]:
    """The target's dynamic groups the policy treats as privileged, and warnings for unusable rules.

    Accepts Graph-shaped groups (`membershipRule`, `isAssignableToRole`) or store rows (snake_case).
    A rule the engine cannot parse is kept with `error` set: it fails closed (see the module docstring).
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
            props = frozenset(_bare(p).casefold() for p in properties(rule))
        except Exception as exc:  # RuleError, or any engine failure on a rule we did not write
            out.append(PrivilegedGroup(gid, name, rule, why, rule_text_properties(rule), error=cap(str(exc), 200)))
            warnings.append(_degraded(name, gid, str(exc)))
            continue
        out.append(PrivilegedGroup(gid, name, rule, why, props))
    return out, warnings


def _degraded(name: str, gid: str, error: str) -> str:
    return (f"{NAME}: DEGRADED: group '{name}' ({gid}) has a membership rule that cannot be evaluated "
            f"({cap(error, 200)}); every incoming write touching a property its rule names is held until the "
            f"rule is fixed in the target tenant")


def _bare(prop: str) -> str:
    """'user.department' -> 'department' (rule properties name the object; our attributes do not)."""
    return prop.split(".", 1)[1] if prop.lower().startswith(("user.", "device.")) else prop


def _keys(record: Mapping[str, Any]) -> set[str]:
    """Casefolded property names of a record; onPremisesExtensionAttributes contributes extensionAttributeN."""
    out = {k.casefold() for k in record}
    ext = record.get("onPremisesExtensionAttributes")
    if isinstance(ext, Mapping):
        out |= {k.casefold() for k in ext}
    return out


def _compiled_evaluator() -> Evaluate:
    """`evaluate_rule`, with each rule's compiled form looked up once per plan rather than once per row and
    group (the lookup cost as much as the evaluation). A rule that fails to compile is not remembered, so it
    raises on every call, as `evaluate_rule` does."""
    from xts_pipeline.dynamic_rules import compile_rule

    compiled: dict[str, Callable[[Mapping[str, Any]], bool]] = {}

    def evaluate(rule: str, user: Mapping[str, Any]) -> bool:
        fn = compiled.get(rule)
        if fn is None:
            fn = compiled[rule] = compile_rule(rule).evaluate
        return fn(user)

    return evaluate


def find_privilege_grants(
    rows: Iterable[Mapping[str, Any]],
    groups: list[PrivilegedGroup],
    evaluate: Evaluate | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Violations: incoming writes after which the user satisfies a privileged rule it did not satisfy before."""
    explain: Callable[[str, Mapping[str, Any]], list[str]] | None = None
    if evaluate is None:
        from xts_pipeline.dynamic_rules import explain
        evaluate = _compiled_evaluator()
    found: list[dict[str, Any]] = []
    warnings: list[str] = []
    broken: dict[str, str] = {g.id: g.error for g in groups if g.error}
    for row in incoming(rows):
        post = after(row)
        if post is None:
            continue  # a delete leaves no record to be a member
        whole = rechecks_whole_record(row)
        # Property names are folded only when needed: a whole record is evaluated by every sound rule anyway.
        touched: set[str] | None = None if whole else _keys(written(row))
        for g in groups:
            hit: frozenset[str] | None = None
            if not whole or g.id in broken:
                if touched is None:
                    touched = _keys(post)
                hit = g.properties & touched
                if not hit:
                    continue  # nothing the rule reads changes: membership cannot change with this write
            if g.id not in broken:
                try:
                    joins = evaluate(g.rule, post) and (whole or not evaluate(g.rule, current(row)))
                except Exception as exc:  # an engine error on one group fails closed for that group
                    broken[g.id] = cap(str(exc), 200)
                    warnings.append(_degraded(g.display_name, g.id, str(exc)))
                    joins = None
                if joins is False:
                    continue
            if hit is None:
                hit = g.properties & _keys(post)
            granting = sorted(p for p in post if p.casefold() in hit) or sorted(hit)
            entry = {
                **user_ref(row),
                "group": g.display_name,
                "group_id": g.id,
                "group_is": g.why,
                "rule": cap(g.rule, 200),
                "attributes": {p: cap(str(post.get(p))) for p in granting},
            }
            if g.id in broken:
                entry["degraded"] = f"rule cannot be evaluated: {broken[g.id]}"
                entry["clauses"] = []
            else:
                entry["clauses"] = [cap(c, 200) for c in explain(g.rule, post)] if explain else []
            found.append(entry)
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
        if "degraded" in f:
            message = (f"{NAME}: {len(blocked)} incoming write(s) held; first: {f['user']} writes {attrs}, read by "
                       f"privileged group '{f['group']}' ({f['group_is']}) whose {f['degraded']}. Fix the rule "
                       f"{f['rule']} in the target tenant")
        else:
            clauses = " and ".join(f["clauses"]) or "the rule"
            message = (
                f"{NAME}: {len(blocked)} incoming user(s) would join a privileged group; first: {f['user']} "
                f"would join '{f['group']}' ({f['group_is']}) through {attrs}: {clauses} holds in rule "
                f"{f['rule']}. Fix the attribute in the source or its mapping, or change the group's rule in the target"
            )
    result = per_user_result(
        NAME,
        policy.on_violation.privilege,
        found,
        blocked,
        rule="no incoming write may leave a user satisfying the membership rule of a role-assignable or "
        "policy-listed dynamic group it did not satisfy before (judged on the post-write record; unreadable "
        "rules hold writes to the properties they name)",
        message=message,
        warnings=warnings + more,
    )
    return replace(result, degraded=bool(warnings + more)) if (warnings or more) else result
