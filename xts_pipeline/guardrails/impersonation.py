"""Block incoming users who look like a protected identity of the target (the CEO look-alike).

Set-based: each protected value's skeleton goes into a dict once, then every incoming value is one
lookup, so 80,000 incoming users against 1,000 protected values stays linear.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .confusables import describe_lookalikes, skeleton
from .policy import InboundPolicy
from .report import GuardrailResult, cap, per_user_result
from .rows import incoming, user_ref, written

NAME = "impersonation"
FIELDS = ("displayName", "mail", "userPrincipalName", "mailNickname")


@dataclass(frozen=True)
class ProtectedIdentity:
    """One value that must not be mimicked, with why it is protected (shown in messages)."""

    value: str
    label: str
    user_id: str | None = None  # the target user it belongs to, so that user's own update is not flagged


def identity_values(field: str, value: str | None) -> list[str]:
    """The comparable forms of one identity field: mail/UPN also yield their local part.

    For a B2B UPN (`alias_domain.com#EXT#@target.onmicrosoft.com`) the original alias is used.
    """
    if not value:
        return []
    if field in ("mail", "userPrincipalName"):
        upper = value.upper()
        if "#EXT#" in upper:
            alias = value[: upper.index("#EXT#")]  # alias_domain.com -> alias
            return [alias.rsplit("_", 1)[0] if "_" in alias else alias]
        return [value, value.split("@", 1)[0]] if "@" in value else [value]
    return [value]


def _user_values(user: Mapping[str, Any]) -> list[str]:
    return [v for f in FIELDS for v in identity_values(f, user.get(f))]


def protected_identities(
    policy: InboundPolicy,
    target_users: Iterable[Mapping[str, Any]] = (),
    role_assignable_members: Iterable[str] | Mapping[str, str] = (),
    role_holders: Iterable[str] | Mapping[str, str] = (),
) -> list[ProtectedIdentity]:
    """Protected identities: listed in the policy, plus members of role-assignable groups and role holders.

    `role_assignable_members` / `role_holders` are target user ids, or `{user id: group/role name}` so
    the message can say why (e.g. 'holder of Global Administrator').
    """
    imp = policy.impersonation
    out = [ProtectedIdentity(e.value, e.label or "listed in the inbound policy") for e in imp.entries()]
    reasons: dict[str, str] = {}
    sources: list[tuple[bool, Iterable[str] | Mapping[str, str], str]] = [
        (imp.include_role_assignable_group_members, role_assignable_members, "member of role-assignable group"),
        (imp.include_directory_role_holders, role_holders, "holder of directory role"),
    ]
    for enabled, ids, why in sources:
        if not enabled:
            continue
        named = ids if isinstance(ids, Mapping) else dict.fromkeys(ids, "")
        for uid, what in named.items():
            reasons.setdefault(uid, f"{why} '{what}'" if what else why)
    if reasons:
        for user in target_users:
            uid = user.get("id")
            if uid in reasons:
                out.extend(ProtectedIdentity(v, reasons[uid], uid) for v in _user_values(user))
    return out


def find_impersonations(
    rows: Iterable[Mapping[str, Any]],
    protected: Sequence[ProtectedIdentity],
    min_length: int = 3,
    exempt: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """One violation dict per incoming plan row that equals or resembles a protected identity.

    `exempt` holds source object ids, UPNs or mails of incoming users the target vouches for.
    """
    exempt_keys = {e.casefold() for e in exempt}
    index: dict[str, list[ProtectedIdentity]] = {}
    for p in protected:
        key = skeleton(p.value)
        if len(key) >= min_length:
            index.setdefault(key, []).append(p)
    if not index:
        return []
    found: list[dict[str, Any]] = []
    for row in incoming(rows):
        attrs = written(row)
        if exempt_keys and _is_exempt(row, attrs, exempt_keys):
            continue
        for field in FIELDS:
            hit = _match(field, attrs.get(field), index, row.get("target_user_id"))
            if hit:
                found.append({**user_ref(row), **hit})
                break
    return found


def _is_exempt(row: Mapping[str, Any], attrs: Mapping[str, Any], exempt: set[str]) -> bool:
    names = (row.get("source_object_id"), row.get("user_principal_name"), row.get("mail"),
             attrs.get("userPrincipalName"), attrs.get("mail"))
    return any(isinstance(n, str) and n.casefold() in exempt for n in names)


def _match(field: str, value: Any, index: Mapping[str, list[ProtectedIdentity]], own_id: Any) -> dict | None:
    if not isinstance(value, str):
        return None
    for form in identity_values(field, value):
        for p in index.get(skeleton(form), ()):
            if own_id is not None and p.user_id == own_id:
                continue  # the protected user's own record is not an impersonation of itself
            return {
                "field": field,
                "value": cap(value),
                "protected": cap(p.value),
                "protected_because": p.label,
                "how": _how(form, p.value),
            }
    return None


def _how(incoming_value: str, protected_value: str) -> str:
    """Say what differs, so the message names the trick: 'Cyrillic е', 'case', 'spacing/punctuation'."""
    if incoming_value == protected_value:
        return "identical"
    odd = [d for d in describe_lookalikes(incoming_value) if d not in describe_lookalikes(protected_value)]
    if odd:
        return ", ".join(odd[:5])
    if incoming_value.casefold() == protected_value.casefold():
        return "differs only in case"
    return "differs only in case, spacing, punctuation or look-alike letters (l/I/1, 0/O, rn/m)"


def check_impersonation(
    rows: Iterable[Mapping[str, Any]], protected: Sequence[ProtectedIdentity], policy: InboundPolicy
) -> GuardrailResult:
    """The impersonation guardrail over one pair's plan."""
    imp = policy.impersonation
    found = find_impersonations(rows, protected, imp.min_skeleton_length, imp.exempt)
    blocked = {str(v["source_object_id"]) for v in found}
    message = ""
    if found:
        first = found[0]
        message = (
            f"{NAME}: {len(blocked)} incoming user(s) resemble a protected identity; first: "
            f"{first['field']} '{first['value']}' of {first['user']} resembles '{first['protected']}' "
            f"({first['protected_because']}): {first['how']}. Fix the source user's attributes, or remove "
            f"the protected entry from the target's inbound policy if it is wrong"
        )
    return per_user_result(
        NAME,
        policy.on_violation.impersonation,
        found,
        blocked,
        rule="displayName, mail, UPN prefix or mailNickname equals or resembles (case, diacritics, "
        "confusables, spacing, punctuation) a protected identity",
        message=message,
    )
