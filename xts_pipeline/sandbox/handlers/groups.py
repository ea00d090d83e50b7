"""/groups and their members, as directoryObjects."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..odata import parse_select
from ..store import DEFAULT_USER_PROPS
from ..wire import GROUP_DEFAULT, GROUP_PROPS, GraphRequest, GraphResponse, _ok, _project
from .common import _USER_TYPE, _entity, _not_found, user_props
from .listing import _list

if TYPE_CHECKING:
    from ..app import SandboxApp


def list_groups(app: SandboxApp, req: GraphRequest, base: str) -> GraphResponse:
    t = req.tenant
    return _list(app, req, base, kind="groups", props=list(GROUP_PROPS), default_props=GROUP_DEFAULT,
                 context="groups", entity="group", fetch=lambda after, n, full: app.store.page_groups(t, after, n))


def get_group(app: SandboxApp, req: GraphRequest, base: str, gid: str) -> GraphResponse:
    select = parse_select(req.param("select"), GROUP_PROPS, "group")
    group = app.store.get_group(req.tenant, gid)
    if group is None:
        raise _not_found(gid)
    return _ok(_entity(base, "groups/$entity", _project(group, select or GROUP_DEFAULT)))


def list_members(app: SandboxApp, req: GraphRequest, base: str, gid: str) -> GraphResponse:
    t = req.tenant
    if app.store.get_group(t, gid) is None:
        raise _not_found(gid)
    return _list(app, req, base, kind="members", props=user_props(app, t), default_props=DEFAULT_USER_PROPS,
                 context="directoryObjects", decorate={"@odata.type": _USER_TYPE},
                 fetch=lambda after, n, full: app.store.page_members(t, gid, after, n))
