"""The one result type every guardrail returns, so the Dagster layer maps them all the same way."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

Severity = Literal["ERROR", "WARN"]
Scope = Literal["user", "pair"]

MAX_OFFENDERS = 20
MAX_VALUE_CHARS = 80


def cap(value: Any, limit: int = MAX_VALUE_CHARS) -> Any:
    """Make a source-controlled string safe to show: shortened, and invisible or control characters
    escaped (no forged log lines, and a zero-width trick shows as \\u200b instead of nothing)."""
    if not isinstance(value, str):
        return value
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    if not value.isprintable():
        value = "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in value)
    return value


@dataclass(frozen=True)
class GuardrailResult:
    """What one guardrail decided about one pair's plan.

    `blocked_user_ids` are *source* object ids (unique within a pair, present on every plan row,
    creates included). `scope="pair"` with `passed=False` and severity ERROR blocks the pair's apply;
    `scope="user"` removes just the blocked users, unless `blocks_cycle` says the policy wants more.
    """

    name: str
    passed: bool
    severity: Severity = "ERROR"
    scope: Scope = "user"
    blocked_user_ids: frozenset[str] = frozenset()
    offenders: tuple[Mapping[str, Any], ...] = ()
    rule: str = ""
    count: int = 0
    limit: int | None = None
    message: str = ""
    blocks_cycle: bool = False
    approvable: bool = True  # loop guard and source consent cannot be overridden by an approval
    approval: Mapping[str, Any] | None = None
    warnings: tuple[str, ...] = field(default=())
    degraded: bool = False  # the guardrail could not judge everything (e.g. an unparseable rule) and failed closed

    @property
    def blocking(self) -> bool:
        """True when the pair's apply must not run (after any approval was taken into account)."""
        return not self.passed and self.severity == "ERROR" and (self.scope == "pair" or self.blocks_cycle)

    def with_approval(self, approval: Mapping[str, Any]) -> GuardrailResult:
        """This result, passed because an admin approved the exact plan; the approval stays visible.

        Only results that stop the whole pair are approvable: approving a large first load must not
        also let through a CEO look-alike hidden among 80,000 users (use impersonation.exempt for that).
        """
        if self.passed or not self.approvable or not (self.scope == "pair" or self.blocks_cycle):
            return self
        note = (f"approved by {approval.get('approved_by')} at {approval.get('approved_at')}: "
                f"{cap(str(approval.get('reason', '')))}")
        if self.scope == "user":
            # block_cycle on a per-user guardrail: the approval lets the cycle run, the offenders stay out.
            return replace(self, blocks_cycle=False, approval=dict(approval),
                           message=f"{self.message} — cycle {note}; these users stay excluded")
        return replace(self, passed=True, approval=dict(approval), blocked_user_ids=frozenset(),
                       message=f"{self.message} — {note}")

    def to_metadata(self) -> dict[str, Any]:
        """Plain JSON-able metadata for Dagster (values already capped; no secrets are ever inputs)."""
        meta: dict[str, Any] = {
            "guardrail": self.name,
            "passed": self.passed,
            "severity": self.severity,
            "scope": self.scope,
            "blocks_cycle": self.blocking,
            "approvable": self.approvable and self.blocking,
            "count": self.count,
            "limit": self.limit,
            "rule": self.rule,
            "message": self.message,
            "blocked_users": len(self.blocked_user_ids),
            "offenders": [dict(o) for o in self.offenders[:MAX_OFFENDERS]],
        }
        if len(self.offenders) > MAX_OFFENDERS:
            meta["offenders_truncated"] = len(self.offenders) - MAX_OFFENDERS
        if self.approval is not None:
            meta["approval"] = {k: str(v) for k, v in self.approval.items()}
        if self.warnings:
            meta["warnings"] = list(self.warnings)
        if self.degraded:
            meta["degraded"] = True
        return json.loads(json.dumps(meta, default=str))


def severity_for(action: str) -> Severity:
    return "WARN" if action == "warn" else "ERROR"


def per_user_result(
    name: str,
    action: str,
    offenders: list[dict[str, Any]],
    blocked: Iterable[str],
    rule: str,
    message: str,
    warnings: Iterable[str] = (),
) -> GuardrailResult:
    """Build a per-user guardrail's result; `action` is the policy's on_violation for it."""
    blocked_ids = frozenset(blocked)
    passed = not blocked_ids
    return GuardrailResult(
        name=name,
        passed=passed,
        severity=severity_for(action),
        scope="user",
        blocked_user_ids=frozenset() if action == "warn" else blocked_ids,
        offenders=tuple(offenders[:MAX_OFFENDERS]),
        rule=rule,
        count=len(blocked_ids),
        limit=0,
        message=message if not passed else f"{name}: no incoming user violates the policy",
        blocks_cycle=action == "block_cycle",
        warnings=tuple(warnings),
    )
