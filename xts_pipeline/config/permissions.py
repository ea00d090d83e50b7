"""Least-privilege Microsoft Graph application permissions per role a tenant plays.

Each permission is the one Microsoft's API reference marks "least privileged" for a call we make.
"""

from __future__ import annotations

from collections.abc import Iterable

SOURCE_PERMISSIONS: dict[str, str] = {
    "User.Read.All": "read users, their managers and users/delta",
}
SOURCE_GROUP_PERMISSIONS: dict[str, str] = {
    "GroupMember.Read.All": "read assigned groups and their direct members (scope.groups)",
}
TARGET_PERMISSIONS: dict[str, str] = {
    "User.Invite.All": "create B2B users with POST /invitations",
    "User.ReadWrite.All": "update, soft-delete and restore the synced users",
    "GroupMember.Read.All": "read dynamic groups and their rules for the guardrails",
    "Policy.Read.All": "read the cross-tenant access partner policy (identitySynchronization)",
    "Application.ReadWrite.OwnedBy": "register directory extensions on the app itself",
}


def permissions_for_roles(roles: Iterable[str], uses_assigned_groups: bool = False) -> list[str]:
    """Sorted permissions for a tenant that is a 'source' and/or a 'target'."""
    roles = set(roles)
    needed: set[str] = set()
    if "source" in roles:
        needed |= set(SOURCE_PERMISSIONS)
        if uses_assigned_groups:
            needed |= set(SOURCE_GROUP_PERMISSIONS)
    if "target" in roles:
        needed |= set(TARGET_PERMISSIONS)
    return sorted(needed)
