"""Least-privilege Microsoft Graph application permissions per role a tenant plays.

Each permission is the one Microsoft's API reference marks "least privileged" for a call we make.
Required ones make the sync fail without them; optional ones only weaken a guardrail, which the
snapshot and the check then say (so an admin can choose to grant less, knowingly).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

SOURCE_PERMISSIONS: dict[str, str] = {
    "User.Read.All": "read users, their managers and users/delta",
    "Organization.Read.All": "read the tenant's verified domains (GET /organization)",
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
TARGET_OPTIONAL_PERMISSIONS: dict[str, str] = {
    "RoleManagement.Read.Directory": "read directory-role holders (GET /directoryRoles and members), whom the "
                                     "impersonation guardrail then protects; without it the snapshot warns",
}


@dataclass(frozen=True)
class PermissionNeed:
    """One application permission a tenant's app should hold, whether the sync fails without it, and why."""

    permission: str
    required: bool
    roles: tuple[str, ...]  # 'source' and/or 'target'
    why: str


def permissions_for_roles(roles: Iterable[str], uses_assigned_groups: bool = False) -> list[str]:
    """Sorted REQUIRED permissions for a tenant that is a 'source' and/or a 'target' (optional ones:
    `optional_permissions_for_roles`)."""
    return sorted(n.permission for n in permission_needs(roles, uses_assigned_groups) if n.required)


def optional_permissions_for_roles(roles: Iterable[str]) -> list[str]:
    """Sorted optional permissions: not needed to sync, but a guardrail is weaker without them."""
    return sorted(n.permission for n in permission_needs(roles) if not n.required)


def permission_needs(roles: Iterable[str], uses_assigned_groups: bool = False) -> list[PermissionNeed]:
    """Every permission for these roles, required ones first, each once (a permission two roles need
    lists both roles and both reasons)."""
    roles = set(roles)
    tables: list[tuple[str, bool, dict[str, str]]] = []
    if "source" in roles:
        tables.append(("source", True, SOURCE_PERMISSIONS))
        if uses_assigned_groups:
            tables.append(("source", True, SOURCE_GROUP_PERMISSIONS))
    if "target" in roles:
        tables += [("target", True, TARGET_PERMISSIONS), ("target", False, TARGET_OPTIONAL_PERMISSIONS)]
    merged: dict[str, PermissionNeed] = {}
    for role, required, table in tables:
        for perm, why in table.items():
            prev = merged.get(perm)
            if prev is None:
                merged[perm] = PermissionNeed(perm, required, (role,), why)
            else:
                merged[perm] = PermissionNeed(perm, prev.required or required,
                                              tuple(dict.fromkeys((*prev.roles, role))), f"{prev.why}; {why}")
    return sorted(merged.values(), key=lambda n: (not n.required, n.permission))
