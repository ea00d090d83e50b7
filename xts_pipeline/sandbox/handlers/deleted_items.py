"""/directory/deletedItems for users: list, get, restore and purge a soft-deleted user."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..odata import parse_select
from ..store import DEFAULT_USER_PROPS, DELETED
from ..wire import GraphError, GraphRequest, GraphResponse, _no_content, _ok, _project
from .common import _USER_TYPE, _entity, _not_found, user_props
from .listing import _list

if TYPE_CHECKING:
    from ..app import SandboxApp


def list_deleted(app: SandboxApp, req: GraphRequest, base: str) -> GraphResponse:
    t = req.tenant
    app.store.purge_expired(t, app.clock.now())
    return _list(app, req, base, kind="deleted", props=user_props(app, t),
                 default_props=(*DEFAULT_USER_PROPS, "deletedDateTime"), context="directoryObjects",
                 decorate={"@odata.type": _USER_TYPE},
                 fetch=lambda after, n, full: app.store.deleted_users(t, after, n))


def get_deleted(app: SandboxApp, req: GraphRequest, base: str, key: str) -> GraphResponse:
    app.store.purge_expired(req.tenant, app.clock.now())
    row = app.store.get_user_row(req.tenant, key, states=(DELETED,))
    if row is None:
        raise _not_found(key)
    select = parse_select(req.param("select"), user_props(app, req.tenant))
    return _ok(_entity(base, "directoryObjects/$entity",
                       _project(row[2], select or (*DEFAULT_USER_PROPS, "deletedDateTime")), _USER_TYPE))


def restore_deleted(app: SandboxApp, req: GraphRequest, base: str, key: str) -> GraphResponse:
    t = req.tenant
    app.store.purge_expired(t, app.clock.now())
    row = app.store.get_user_row(t, key, states=(DELETED,))
    if row is None:
        raise _not_found(key)
    upn = row[2].get("userPrincipalName") or ""
    if upn and app.store.upn_taken(t, upn):
        raise GraphError(400, "Request_BadRequest", "Another object with the same value for property "
                         f"userPrincipalName already exists ('{upn}' in tenant '{t.name}'); rename or delete it "
                         "before restoring.")
    user = app.store.restore(t, row[0])
    app.note_write(t, user["id"], created=True)
    return _ok(_entity(base, "directoryObjects/$entity", _project(user, DEFAULT_USER_PROPS), _USER_TYPE))


def purge_deleted(app: SandboxApp, req: GraphRequest, base: str, key: str) -> GraphResponse:
    row = app.store.get_user_row(req.tenant, key, states=(DELETED,))
    if row is None:
        raise _not_found(key)
    app.store.purge_one(req.tenant, row[0])
    return _no_content()
