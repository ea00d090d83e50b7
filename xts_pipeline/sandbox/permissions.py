"""Which Graph application permissions the sandbox accepts per endpoint, and the demo apps' grants.

Each tuple lists, as Microsoft's API reference does for that endpoint, the least privileged application
permission first and then the higher-privileged ones Graph also accepts. Graph has no global "X implies
Y" rule, so neither does the sandbox: User.ReadWrite.All may POST /invitations (listed there) but may not
register extension properties (not listed there).
"""

from __future__ import annotations

USERS_READ = ("User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All")
USERS_WRITE = ("User.ReadWrite.All", "Directory.ReadWrite.All")
INVITE = ("User.Invite.All", "User.ReadWrite.All", "Directory.ReadWrite.All")
DELETED_USERS_READ = USERS_READ
DELETED_USERS_WRITE = ("User.ReadWrite.All",)  # restore/purge a user: the docs list no alternative
APP_READ = ("Application.Read.All", "Application.ReadWrite.OwnedBy", "Application.ReadWrite.All")
EXTENSIONS_READ = (*APP_READ, "Directory.Read.All")
EXTENSIONS_WRITE = ("Application.ReadWrite.OwnedBy", "Application.ReadWrite.All", "Directory.ReadWrite.All")
GROUPS_READ = ("GroupMember.Read.All", "Group.Read.All", "GroupMember.ReadWrite.All", "Group.ReadWrite.All",
               "Directory.Read.All", "Directory.ReadWrite.All")
ROLES_READ = ("RoleManagement.Read.Directory", "RoleManagement.ReadWrite.Directory", "Directory.Read.All",
              "Directory.ReadWrite.All")
POLICY_READ = ("Policy.Read.All", "Policy.ReadWrite.CrossTenantAccess")
POLICY_WRITE = ("Policy.ReadWrite.CrossTenantAccess",)
# GET /organization (api/organization-get.md permissions table): Application "Organization.Read.All" least
# privileged; "Directory.Read.All, Organization.ReadWrite.All, Directory.ReadWrite.All" higher. (The
# stored organization-list include names Directory.Read.All first; the get page and the current list
# page name Organization.Read.All, which is what a least-privilege app is granted.)
ORG_READ = ("Organization.Read.All", "Directory.Read.All", "Organization.ReadWrite.All", "Directory.ReadWrite.All")

# Every permission some sandbox route accepts: what a seed file may grant.
KNOWN_PERMISSIONS: tuple[str, ...] = tuple(sorted({
    p for group in (USERS_READ, USERS_WRITE, INVITE, DELETED_USERS_READ, DELETED_USERS_WRITE, APP_READ,
                    EXTENSIONS_READ, EXTENSIONS_WRITE, GROUPS_READ, ROLES_READ, POLICY_READ, POLICY_WRITE, ORG_READ)
    for p in group
}))

# The least-privileged grants of an app whose tenant is both a sync source and a target (every demo tenant
# is, see xts_pipeline/demo/topology.yaml), matching xts_pipeline.config.permissions plus the optional
# RoleManagement.Read.Directory for reading directory-role holders.
DEMO_APP_PERMISSIONS: list[str] = [
    "Application.ReadWrite.OwnedBy",
    "GroupMember.Read.All",
    "Organization.Read.All",
    "Policy.Read.All",
    "RoleManagement.Read.Directory",
    "User.Invite.All",
    "User.Read.All",
    "User.ReadWrite.All",
]
