"""Activated directory roles and their members (api/directoryrole-get.md,
api/directoryrole-list-members.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from ..odata import parse_select
from ..store import DEFAULT_USER_PROPS
from ..wire import GraphError, GraphRequest, GraphResponse, _ok, _project
from .common import _assemble, _context, _entity, _not_found, _parse_top, user_props
from .listing import _list

if TYPE_CHECKING:
    from ..app import SandboxApp


DIRECTORY_ROLE_PROPS = ("id", "deletedDateTime", "description", "displayName", "roleTemplateId")


def list_directory_roles(app: SandboxApp, req: GraphRequest, base: str) -> GraphResponse:
    t = req.tenant
    return _list(app, req, base, kind="directoryRoles", props=list(DIRECTORY_ROLE_PROPS),
                 default_props=DIRECTORY_ROLE_PROPS, context="directoryRoles", entity="directoryRole",
                 fetch=lambda after, n, full: app.store.page_directory_roles(t, after, n))


def _role(app: SandboxApp, req: GraphRequest, key: str) -> dict:
    role = app.store.get_directory_role(req.tenant, key)
    if role is None:
        raise _not_found(key)
    return role


def get_directory_role(app: SandboxApp, req: GraphRequest, base: str, key: str) -> GraphResponse:
    select = parse_select(req.param("select"), DIRECTORY_ROLE_PROPS, "directoryRole")
    role = _role(app, req, key)
    return _ok(_entity(base, "directoryRoles/$entity", _project(role, select or DIRECTORY_ROLE_PROPS)))


def list_role_members(app: SandboxApp, req: GraphRequest, base: str, key: str) -> GraphResponse:
    """Members of an activated role (by object id or roleTemplateId): api/directoryrole-list-members.md
    returns directoryObjects - users, groups (role-assignable) and service principals - each typed."""
    t = req.tenant
    role_id = _role(app, req, key)["id"]
    group_props = ("id", "displayName", "description", "mail", "mailEnabled", "securityEnabled",
                   "isAssignableToRole")
    sp_props = ("id", "appId", "displayName", "servicePrincipalType", "accountEnabled")
    user_known = user_props(app, t)
    select = parse_select(req.param("select"), sorted({*user_known, *group_props, *sp_props}), "directoryObject")
    top = _parse_top(req)
    after = ""
    token = req.param("skiptoken")
    key_ = f"rolemembers:{t.tenant_id}:{role_id}"
    if token:
        st = app.decode_token(token)
        if not st or st.get("k") != key_:
            raise GraphError(400, "Request_BadRequest", "The $skiptoken is not valid; follow @odata.nextLink.")
        after, select, top = st["a"], st["s"], st["t"]
    rows = app.store.page_role_members(t, role_id, after, top + 1)
    items = []
    for _mid, kind, blob in rows[:top]:
        d = orjson.loads(blob)
        props = select or {"user": DEFAULT_USER_PROPS, "group": group_props, "servicePrincipal": sp_props}[kind]
        items.append(orjson.dumps({"@odata.type": f"#microsoft.graph.{kind}",
                                   **_project(d, [p for p in props if kind == "user" or p in d or p == "id"])}))
    nxt = None
    if len(rows) > top:
        nxt = f"{base}/v1.0{req.path}?$skiptoken=" + app.encode_token({"k": key_, "a": rows[top - 1][0],
                                                                        "s": select, "t": top})
    return GraphResponse(200, _assemble(_context(base, "directoryObjects", select), items, nxt))
