"""Helpers shared by the tests/test_graph_*.py modules: tenant connections and sandbox state."""

from __future__ import annotations

from xts_pipeline.graph import TenantConnection
from xts_pipeline.sandbox.process import SandboxProcess

ALL_PERMS = ["User.Read.All", "Organization.Read.All", "User.ReadWrite.All", "User.Invite.All", "Group.Read.All",
             "Policy.Read.All", "Application.Read.All", "Application.ReadWrite.OwnedBy"]
LINK = ["xtsSourceTenantId", "xtsSourceObjectId", "xtsSyncConfig"]


def connection(info: dict, t: dict, **over) -> TenantConnection:
    """A TenantConnection for sandbox tenant `t` (an entry of `info["tenants"]`); `over` replaces fields."""
    args = dict(name=t["name"], tenant_id=t["tenant_id"], authority=t["authority"], graph_url=info["graph_url"],
                client_id=t["client_id"], client_secret=t["client_secret"], ca_file=info["ca_file"])
    args.update(over)
    return TenantConnection(**args)


def grant(sandbox: SandboxProcess, name: str, perms: list[str] = ALL_PERMS) -> dict:
    """Give tenant `name`'s app `perms` and return the tenant's sandbox info."""
    sandbox.admin("PUT", f"/_sandbox/tenants/{name}/permissions", json={"permissions": perms})
    return sandbox.tenant(name)


def raw_users(sandbox: SandboxProcess, name: str, deleted: bool = False) -> list[dict]:
    """The tenant's users straight from the sandbox admin API (soft-deleted ones too with `deleted`)."""
    q = "?include_deleted=true" if deleted else ""
    return sandbox.admin("GET", f"/_sandbox/tenants/{name}/users{q}")["value"]
