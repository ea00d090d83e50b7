"""/users and the manager reference: list, $count, get, create, update, delete; get, set and remove
a manager (api/user-list.md, api/user-update.md, api/user-list-manager.md)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import orjson

from .. import validation
from ..clock import iso
from ..odata import parse_filter, parse_select
from ..store import DEFAULT_USER_PROPS
from ..wire import (
    BOOL_PROPS,
    LIST_PROPS,
    READ_ONLY_USER_PROPS,
    USER_PROPS,
    GraphError,
    GraphRequest,
    GraphResponse,
    _no_content,
    _ok,
    _project,
)
from .common import _EXT_TYPES, _USER_TYPE, _entity, _eventual, _extensions, _not_found, user_props
from .listing import _expand_manager, _list, _refuse_unsupported, _with_managers

if TYPE_CHECKING:
    from ..app import SandboxApp
    from ..store import Tenant


def _get_active(app: SandboxApp, tenant: Tenant, key: str, access: str | None = None) -> dict:
    """The active user by id or UPN; with replication lag on, a just-written one is not found yet by reads
    (and a just-created one not by writes either: user-list.md, "This request might have replication
    delays for users that were recently created, updated, or deleted")."""
    user = app.store.get_user(tenant, key)
    if user is None or (access is not None and app.lagging(tenant, user["id"], writes=access == "write")):
        raise _not_found(key)
    return user


def _validate_user_body(app: SandboxApp, tenant: Tenant, body: dict, user_id: str | None,
                        current: dict | None = None) -> dict:
    """Check names, types and values like Graph; returns the properties to store (secrets dropped)."""
    known = set(USER_PROPS) - READ_ONLY_USER_PROPS
    exts = _extensions(app, tenant)
    clean: dict = {}
    try:
        for k, v in body.items():
            if k in ("passwordProfile", "passwordPolicies", "@odata.type"):
                continue  # accepted, never stored: the sandbox keeps no passwords
            if k.startswith("extension_"):
                if k not in exts:
                    raise GraphError(400, "Request_BadRequest",
                                     f"Property '{k}' does not exist as a declared property or extension property. "
                                     f"Register it first with POST /applications/{{id}}/extensionProperties in "
                                     f"tenant '{tenant.name}'.")
                kinds = _EXT_TYPES.get(exts[k], (str,))
                if not (v is None or (isinstance(v, kinds) and not (bool not in kinds and isinstance(v, bool)))):
                    raise GraphError(400, "Request_BadRequest",
                                     f"Invalid value specified for property '{k}' of resource 'User' (its dataType "
                                     f"is {exts[k]}).")
                validation.check_extension_value(k, exts[k], v)
                clean[k] = v
                continue
            if k == "onPremisesExtensionAttributes":
                synced = bool((current or {}).get("onPremisesSyncEnabled"))
                merged = {**((current or {}).get(k) or validation.empty_on_prem_attributes()),
                          **validation.check_on_prem_attributes(v, synced)}
                clean[k] = merged
                continue
            if k not in known:
                what = "is read-only" if k in READ_ONLY_USER_PROPS else \
                    "does not exist on type 'microsoft.graph.user'"
                raise GraphError(400, "Request_BadRequest", f"Invalid property '{k}': the property {what}.")
            ok = (v is None or isinstance(v, bool)) if k in BOOL_PROPS else (
                isinstance(v, list) and all(isinstance(x, str) for x in v)) if k in LIST_PROPS else (
                v is None or isinstance(v, str))
            if k == "accountEnabled" and v is None:
                ok = False
            if not ok:
                raise GraphError(400, "Request_BadRequest",
                                 f"Invalid value specified for property '{k}' of resource 'User'.")
            validation.check_value(k, v, creating=user_id is None)
            clean[k] = v
    except validation.Refusal as exc:
        raise GraphError(exc.status, exc.code, exc.message) from None
    if "userType" in clean and clean["userType"] not in ("Member", "Guest"):
        raise GraphError(400, "Request_BadRequest", "Invalid value specified for property 'userType' of resource "
                         "'User': use Member or Guest.")
    upn = clean.get("userPrincipalName")
    if upn is not None:
        if not upn or "@" not in upn:
            raise GraphError(400, "Request_BadRequest", "Property userPrincipalName is invalid.")
        if app.store.upn_taken(tenant, upn, except_id=user_id):
            raise GraphError(400, "Request_BadRequest", "Another object with the same value for property "
                             "userPrincipalName already exists.")
    mail = clean.get("mail")
    if mail:
        # resources/user.md: a mail change "will also update the user's proxyAddresses collection", and the
        # directory keeps proxyAddresses unique across objects.
        other = app.store.find_active_by_mail(tenant, mail)
        if other is not None and other.get("id") != user_id:
            raise GraphError(400, "Request_BadRequest", "Another object with the same value for property "
                             "proxyAddresses already exists.")
    return clean


def _check_sensitive(app: SandboxApp, tenant: Tenant, user: dict, clean: dict) -> None:
    """api/user-update.md: other users' businessPhones, mobilePhone, otherMails (and, on the current page,
    accountEnabled) may be updated only on non-administrators; an app without an admin role gets 403."""
    touched = validation.SENSITIVE_PROPS.intersection(clean)
    if not touched:
        return
    roles = [r for r in app.store.roles_of(tenant, user["id"]) if r not in validation.NON_ADMIN_ROLES]
    if roles:
        raise GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")


def list_users(app: SandboxApp, req: GraphRequest, base: str) -> GraphResponse:
    t = req.tenant
    return _list(app, req, base, kind="users", props=user_props(app, t), default_props=DEFAULT_USER_PROPS,
                 context="users", fast_default=True,
                 fetch=lambda after, n, full: app.store.page_users(t, after, n, with_full=full),
                 lookup=lambda col, v: app.store.users_by_column(t, col, v),
                 fetch_text=lambda after, n, needle: app.store.page_users_containing(t, after, n, needle),
                 total=lambda: t.user_count, can_expand=True, hide=app.lag_filter(t))


def count_users(app: SandboxApp, req: GraphRequest, base: str) -> GraphResponse:
    """GET /users/$count: a text/plain number; an advanced query, so it needs ConsistencyLevel."""
    if not _eventual(req):
        raise GraphError(400, "Request_BadRequest", "Count is not currently supported without the "
                         "'ConsistencyLevel: eventual' request header.")
    n = req.tenant.user_count
    if req.param("filter"):
        filt = parse_filter(req.param("filter"), user_props(app, req.tenant))
        n, cursor = 0, ""
        while True:
            rows = app.store.page_users(req.tenant, cursor, 5000)
            n += sum(1 for _, b in rows if filt.predicate(orjson.loads(b)))
            if len(rows) < 5000:
                break
            cursor = rows[-1][0]
    return GraphResponse(200, str(n).encode(), {"content-type": "text/plain"})


def get_user(app: SandboxApp, req: GraphRequest, base: str, key: str) -> GraphResponse:
    _refuse_unsupported(req, allow=("expand",))
    expand = _expand_manager(req, req.param("expand"))  # api/user-list-manager.md: ?$expand=manager
    select = parse_select(req.param("select"), user_props(app, req.tenant))
    user = _get_active(app, req.tenant, key, "read")
    out = _project(user, select or DEFAULT_USER_PROPS)
    if expand:
        out = _with_managers(app, req.tenant, [{**out, "id": user["id"]}])[0]
        if "id" not in (select or DEFAULT_USER_PROPS):
            out.pop("id", None)
    return _ok(_entity(base, "users/$entity", out))


def create_user(app: SandboxApp, req: GraphRequest, base: str) -> GraphResponse:
    body = req.json()
    missing = [k for k in ("accountEnabled", "displayName", "mailNickname", "userPrincipalName",
                           "passwordProfile") if body.get(k) in (None, "")]
    if missing:
        raise GraphError(400, "Request_BadRequest",
                         f"Property '{missing[0]}' is required when creating a user in tenant '{req.tenant.name}'.")
    clean = _validate_user_body(app, req.tenant, body, None)
    domain = clean["userPrincipalName"].rsplit("@", 1)[1].lower()
    if domain != req.tenant.domain.lower():
        raise GraphError(400, "Request_BadRequest",
                         f"Property userPrincipalName is invalid: the domain '{domain}' is not a verified domain "
                         f"of tenant '{req.tenant.name}' (use @{req.tenant.domain}).")
    user = {"id": str(uuid.uuid4()), "businessPhones": [], "otherMails": [], "userType": "Member",
            "creationType": None, "externalUserState": None, "showInAddressList": None,
            "onPremisesSyncEnabled": None, "createdDateTime": iso(app.clock.now()), **clean}
    user = app.store.create_user(req.tenant, user)
    app.note_write(req.tenant, user["id"], created=True)
    return _ok(_entity(base, "users/$entity", _project(user, DEFAULT_USER_PROPS)), 201)


def patch_user(app: SandboxApp, req: GraphRequest, base: str, key: str) -> GraphResponse:
    user = _get_active(app, req.tenant, key, "write")
    clean = _validate_user_body(app, req.tenant, req.json(), user["id"], current=user)
    _check_sensitive(app, req.tenant, user, clean)
    if clean:
        app.store.update_user(req.tenant, user["id"], clean)
        app.note_write(req.tenant, user["id"])
    return _no_content()


def delete_user(app: SandboxApp, req: GraphRequest, base: str, key: str) -> GraphResponse:
    user = _get_active(app, req.tenant, key, "write")
    now = app.clock.now()
    app.store.soft_delete(req.tenant, user["id"], iso(now), now)
    return _no_content()


def get_manager(app: SandboxApp, req: GraphRequest, base: str, key: str) -> GraphResponse:
    user = _get_active(app, req.tenant, key, "read")
    select = parse_select(req.param("select"), user_props(app, req.tenant))
    manager = app.store.manager_of(req.tenant, user["id"])
    if manager is None:
        raise _not_found("manager")
    return _ok(_entity(base, "directoryObjects/$entity", _project(manager, select or DEFAULT_USER_PROPS),
                       _USER_TYPE))


def put_manager(app: SandboxApp, req: GraphRequest, base: str, key: str) -> GraphResponse:
    user = _get_active(app, req.tenant, key, "write")
    ref = req.json().get("@odata.id")
    if not isinstance(ref, str) or not ref.strip("/"):
        raise GraphError(400, "Request_BadRequest", "The body must be {\"@odata.id\": "
                         "\"https://graph.microsoft.com/v1.0/users/{id}\"}.")
    manager_key = ref.rstrip("/").rsplit("/", 1)[-1]
    manager = app.store.get_user(req.tenant, manager_key)
    if manager is None or app.lagging(req.tenant, manager["id"], writes=True):
        raise _not_found(manager_key)
    if manager["id"] == user["id"]:
        raise GraphError(400, "Request_BadRequest", f"User '{user['id']}' cannot be their own manager.")
    app.store.set_manager(req.tenant, user["id"], manager["id"])
    return _no_content()


def delete_manager(app: SandboxApp, req: GraphRequest, base: str, key: str) -> GraphResponse:
    user = _get_active(app, req.tenant, key, "write")
    app.store.set_manager(req.tenant, user["id"], None)
    return _no_content()
