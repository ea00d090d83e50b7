"""Per-attribute rules the target sets on what a source may write: allow-lists, deny patterns, lengths, mail domains."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from typing import Any

from .policy import AttributeRule, InboundPolicy
from .report import GuardrailResult, cap, per_user_result
from .rows import incoming, user_ref, written

NAME = "attribute_policy"
# Patterns come from the target's admin, values from the source: bound the text a pattern scans.
MAX_SCAN_CHARS = 4096


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _values(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value if v is not None]
    return [str(value)]


def rule_violations(attr: str, value: Any, rule: AttributeRule) -> Iterator[str]:
    """Why `value` breaks `rule`, one sentence per broken clause (nothing when it complies)."""
    for v in _values(value):
        if rule.max_length is not None and len(v) > rule.max_length:
            yield f"{attr} is {len(v)} characters, more than max_length {rule.max_length}"
        if rule.allow is not None and v.casefold() not in {a.casefold() for a in rule.allow}:
            yield f"{attr} is not in the allow-list {rule.allow}"
        for p in rule.deny_patterns:
            if _compiled(p).search(v[:MAX_SCAN_CHARS]):
                yield f"{attr} matches deny pattern {p!r}"


def mail_domain_allowed(mail: str, allowed: Iterable[str]) -> bool:
    """Exact domain match; '*.contoso.com' also admits any subdomain of contoso.com (not contoso.com itself)."""
    domain = mail.rsplit("@", 1)[-1].strip().lower() if "@" in mail else ""
    for d in allowed:
        if d.startswith("*.") and domain.endswith(d[1:]):
            return True
        if domain == d:
            return True
    return False


def find_attribute_violations(rows: Iterable[Mapping[str, Any]], policy: InboundPolicy) -> list[dict[str, Any]]:
    """One violation per (user, attribute) that breaks the policy; only attributes this plan writes."""
    found: list[dict[str, Any]] = []
    if not policy.attribute_policy and policy.allowed_mail_domains is None:
        return found  # no rule to break: nothing to read
    for row in incoming(rows):
        attrs = written(row)
        for attr, rule in policy.attribute_policy.items():
            if attr in attrs:
                for why in rule_violations(attr, attrs[attr], rule):
                    found.append({**user_ref(row), "attribute": attr, "value": cap(str(attrs[attr])), "why": why})
        if policy.allowed_mail_domains is not None and attrs.get("mail"):
            mail = str(attrs["mail"])
            if not mail_domain_allowed(mail, policy.allowed_mail_domains):
                found.append({**user_ref(row), "attribute": "mail", "value": cap(mail),
                              "why": f"mail domain is not in allowed_mail_domains {policy.allowed_mail_domains}"})
    return found


def check_attribute_policy(rows: Iterable[Mapping[str, Any]], policy: InboundPolicy) -> GuardrailResult:
    """The attribute-policy guardrail over one pair's plan."""
    found = find_attribute_violations(rows, policy)
    blocked = {str(v["source_object_id"]) for v in found}
    message = ""
    if found:
        f = found[0]
        message = (f"{NAME}: {len(blocked)} incoming user(s) break the target's attribute policy; first: "
                   f"{f['user']}: {f['why']} (value '{f['value']}'). Fix the value in the source or its "
                   f"mapping, or relax attribute_policy.{f['attribute']} in the target's inbound policy")
    rules = [f"{a}: {r.model_dump(exclude_none=True, exclude_defaults=True)}" for a, r in policy.attribute_policy.items()]
    if policy.allowed_mail_domains is not None:
        rules.append(f"mail domain in {policy.allowed_mail_domains}")
    return per_user_result(NAME, policy.on_violation.attribute_policy, found, blocked,
                           rule="; ".join(rules) or "no attribute rules", message=message)
