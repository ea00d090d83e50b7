"""Who may write at all: listed sources with inbound consent, and never users who are B2B themselves."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from xts_pipeline.external import is_external

from .policy import InboundPolicy
from .report import MAX_OFFENDERS, GuardrailResult, cap


def is_sync_allowed(partner_policy: Mapping[str, Any] | None) -> bool:
    """`identitySynchronization.userSyncInbound.isSyncAllowed` of the target's partner setting; absent = no."""
    if not partner_policy:
        return False
    inbound = partner_policy.get("userSyncInbound") or {}
    return inbound.get("isSyncAllowed") is True


def check_sources(
    source: str, target: str, policy: InboundPolicy, partner_policy: Mapping[str, Any] | None
) -> GuardrailResult:
    """Only sources the target lists, and whose inbound isSyncAllowed is true, may write. Not approvable."""
    listed = source in policy.allowed_sources
    consent = is_sync_allowed(partner_policy)
    pair = f"{source}->{target}"
    problems = []
    if not listed:
        problems.append(f"source '{source}' is not in allowed_sources of target '{target}' "
                        f"(allowed: {policy.allowed_sources or 'none'}); add it to inbound_policies.{target}."
                        f"allowed_sources if the target agrees")
    if not consent:
        problems.append(f"target '{target}' has no inbound isSyncAllowed=true for source '{source}'; set "
                        f"identitySynchronization.userSyncInbound.isSyncAllowed on its cross-tenant access "
                        f"partner setting for the source tenant")
    return GuardrailResult(
        name="sources", passed=not problems, severity="ERROR", scope="pair",
        rule="source listed in allowed_sources and partner isSyncAllowed is true",
        count=0 if listed and consent else 1, limit=0,
        message=f"sources: {pair} may write" if not problems else f"sources: {pair} blocked: " + "; ".join(problems),
        blocks_cycle=True, approvable=False,
    )


def is_external_identity(user: Mapping[str, Any]) -> bool:
    """B2B users of the source, by the one shared definition (xts_pipeline.external.is_external)."""
    return is_external(user)


def loop_guard(source_users: Iterable[Mapping[str, Any]], pair: str = "") -> GuardrailResult:
    """Never sync a user who is itself B2B: that is how A->B->A loops start. Not configurable, not approvable.

    `source_users` are the *source* records of the users in this pair's plan (ids = source object ids).
    """
    offenders = []
    blocked: set[str] = set()
    for u in source_users:
        if is_external_identity(u):
            uid = str(u.get("id"))
            blocked.add(uid)
            if len(offenders) < MAX_OFFENDERS:
                offenders.append({
                    "source_object_id": uid,
                    "user": cap(str(u.get("userPrincipalName", u.get("user_principal_name")))),
                    "userType": u.get("userType", u.get("user_type")),
                    "creationType": u.get("creationType", u.get("creation_type")),
                    "externalUserState": u.get("externalUserState", u.get("external_user_state")),
                })
    message = (f"loop_guard: {pair} plan holds {len(blocked)} user(s) who are B2B in the source (first: "
               f"{offenders[0]['user']}); they were dropped. Only internal members sync; check the pair's "
               f"scope" if blocked else f"loop_guard: {pair} plan holds no B2B users of the source")
    return GuardrailResult(
        name="loop_guard", passed=not blocked, severity="ERROR", scope="user",
        blocked_user_ids=frozenset(blocked), offenders=tuple(offenders),
        rule="creationType Invitation, userType Guest, #EXT# in userPrincipalName or any externalUserState never sync",
        count=len(blocked), limit=0, message=message, approvable=False,
    )
