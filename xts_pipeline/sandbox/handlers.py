"""Graph v1.0 handlers of the sandbox: users, manager, invitations, deleted items, delta, extensions,
groups, organization and cross-tenant access partners. Each takes (app, request, base_url, *path ids).
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING

import orjson

from .app import (
    BOOL_PROPS,
    DELTA_PAGE,
    DELTA_TOKEN_TTL_S,
    GROUP_DEFAULT,
    GROUP_PROPS,
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
from .clock import iso
from .odata import parse_filter, parse_select
from .store import ACTIVE, DEFAULT_USER_PROPS, DELETED

if TYPE_CHECKING:
    from .app import SandboxApp
    from .store import Tenant

_SCAN_CHUNK = 2000
# Values whose JSON text equals the raw text and whose case folding is ASCII-only.
_SAFE_NEEDLE = re.compile(r"^[ !#-\[\]-~]{3,}$")
_EXT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,99}$")
_USER_TYPE = "#microsoft.graph.user"


# ---- helpers -------------------------------------------------------------------------------------
def _not_found(key: str) -> GraphError:
    return GraphError(404, "Request_ResourceNotFound",
                      f"Resource '{key}' does not exist or one of its queried reference-property objects are not "
                      "present.")


def _extensions(app: SandboxApp, tenant: Tenant) -> dict[str, str]:
    """Registered extension property name -> dataType (cached; dropped when one is registered)."""
    cache = app.__dict__.setdefault("_ext_cache", {})
    names = cache.get(tenant.tenant_id)
    if names is None:
        names = cache[tenant.tenant_id] = {e["name"]: e.get("dataType", "String")
                                           for e in app.store.extensions(tenant)}
    return names


_EXT_TYPES = {"String": (str,), "DateTime": (str,), "Binary": (str,), "Boolean": (bool,),
              "Integer": (int,), "LargeInteger": (int,)}


def user_props(app: SandboxApp, tenant: Tenant) -> list[str]:
    return [*USER_PROPS, *sorted(_extensions(app, tenant))]


def _context(base: str, what: str, select: list[str] | None = None) -> str:
    return f"{base}/v1.0/$metadata#{what}" + (f"({','.join(select)})" if select else "")


def _parse_top(req: GraphRequest, default: int = 100) -> int:
    raw = req.param("top")
    if raw is None:
        return default
    try:
        top = int(raw)
    except ValueError:
        top = -1
    if not 1 <= top <= 999:
        raise GraphError(400, "Request_BadRequest",
                         f"Invalid page size specified: '{raw}'. Must be between 1 and 999 inclusive.")
    return top


def _eventual(req: GraphRequest) -> bool:
    return (req.headers.get("consistencylevel") or "").lower() == "eventual"


def _assemble(context: str, items: list[bytes], next_link: str | None = None, count: int | None = None,
              delta_link: str | None = None) -> bytes:
    parts = [b'{"@odata.context":', orjson.dumps(context)]
    if count is not None:
        parts += [b',"@odata.count":', str(count).encode()]
    if next_link:
        parts += [b',"@odata.nextLink":', orjson.dumps(next_link)]
    if delta_link:
        parts += [b',"@odata.deltaLink":', orjson.dumps(delta_link)]
    parts += [b',"value":[', b",".join(items), b"]}"]
    return b"".join(parts)


_UNSUPPORTED = ("expand", "orderby", "search", "skip", "apply", "compute")


def _refuse_unsupported(req: GraphRequest, allow: tuple[str, ...] = ()) -> None:
    """Say so instead of silently ignoring a query option the sandbox does not implement."""
    for opt in _UNSUPPORTED:
        if opt not in allow and req.param(opt) is not None:
            raise GraphError(400, "Request_UnsupportedQuery",
                             f"The query option ${opt} is not supported by the xts sandbox on {req.path} "
                             "(see docs/sandbox.md, 'What is not covered').")


_EXPAND_MANAGER = re.compile(r"^\s*manager\s*(\(\s*\$select\s*=\s*id\s*\))?\s*$", re.IGNORECASE)


def _expand_manager(req: GraphRequest, text: str | None) -> bool:
    """True for `$expand=manager` or `manager($select=id)`, the one expansion the sandbox serves (users)."""
    if text is None:
        return False
    if not _EXPAND_MANAGER.match(text):
        raise GraphError(400, "Request_UnsupportedQuery",
                         f"The xts sandbox supports only $expand=manager($select=id) on {req.path}, not '{text}' "
                         "(see docs/sandbox.md, 'What is not covered').")
    return True


def _with_managers(app: SandboxApp, tenant: Tenant, users: list[dict]) -> list[dict]:
    """Graph's shape for an expanded manager: a reference with only its id, or no key when there is none."""
    managers = app.store.managers_for(tenant, [u["id"] for u in users if u.get("id")])
    for u in users:
        mid = managers.get(u.get("id"))
        if mid:
            u["manager"] = {"@odata.type": "#microsoft.graph.user", "id": mid}
    return users


def _list(app: SandboxApp, req: GraphRequest, base: str, *, kind: str, props: list[str],
          default_props, context: str, fetch, entity: str = "user", decorate: dict | None = None,
          fast_default: bool = False, lookup=None, total=None, fetch_text=None,
          can_expand: bool = False) -> GraphResponse:
    """Generic paged listing over rows ordered by id (`fetch(after, limit, full)` -> [(id, blob)])."""
    _refuse_unsupported(req, allow=("expand",) if can_expand else ())
    key = f"list:{req.tenant.tenant_id}:{req.path.lower()}"
    token = req.param("skiptoken")
    if token:
        st = app.decode_token(token)
        if not st or st.get("k") != key:
            raise GraphError(400, "Request_BadRequest",
                             f"The $skiptoken for {req.path} of tenant '{req.tenant.name}' is not valid; follow "
                             "@odata.nextLink exactly as returned, or start the listing again.")
        select, filt_text, top, count, after = st["s"], st["f"], st["t"], st["c"], st["a"]
        expand = bool(st.get("x"))
        if select is not None:
            select = parse_select(",".join(select), props, entity)
    else:
        select = parse_select(req.param("select"), props, entity)
        filt_text = req.param("filter")
        top = _parse_top(req)
        count = (req.param("count") or "").lower() == "true"
        after = ""
        expand = can_expand and _expand_manager(req, req.param("expand"))
    filt = parse_filter(filt_text, props, entity) if filt_text else None
    if not token:
        if count and not _eventual(req):
            raise GraphError(400, "Request_BadRequest", "$count is not currently supported without the "
                             "'ConsistencyLevel: eventual' request header (an advanced query).")
        if filt is not None and filt.advanced and not (_eventual(req) and count):
            raise GraphError(400, "Request_UnsupportedQuery",
                             f"Unsupported or invalid query filter clause specified for '{filt_text}': operators "
                             "ne, not, endsWith and null comparisons are advanced queries; send the header "
                             "'ConsistencyLevel: eventual' and $count=true.")
    out_props = select or default_props
    fast = fast_default and select is None and filt is None and not decorate and not expand
    matched: list[tuple[str, bytes]] = []
    if filt is not None and lookup is not None and filt.lookup and filt.lookup[0] in ("id", "userPrincipalName",
                                                                                        "mail"):
        col = {"id": "id", "userPrincipalName": "upn", "mail": "mail"}[filt.lookup[0]]
        rows = [r for r in lookup(col, filt.lookup[1]) if r[0] > after]
        for rid, blob in rows:
            if filt.predicate(orjson.loads(blob)):
                matched.append((rid, blob))
    else:
        if filt is not None and fetch_text is not None and filt.lookup and _SAFE_NEEDLE.match(filt.lookup[1]):
            needle = filt.lookup[1]
            fetch = lambda a, n, _full: fetch_text(a, n, needle)  # noqa: E731 - superset pre-filter
        cursor = after
        while len(matched) <= top:
            chunk = top + 1 if filt is None else max(_SCAN_CHUNK, top + 1)
            rows = fetch(cursor, chunk, not fast)
            if filt is None:
                matched.extend(rows)
            else:
                for rid, blob in rows:
                    if filt.predicate(orjson.loads(blob)):
                        matched.append((rid, blob))
            if len(rows) < chunk:
                break
            cursor = rows[-1][0]
    more = len(matched) > top
    page = matched[:top]
    next_link = None
    if more:
        state = {"k": key, "s": select, "f": filt_text, "t": top, "c": count, "a": page[-1][0], "x": expand}
        next_link = f"{base}/v1.0{req.path}?$skiptoken={app.encode_token(state)}"
    if fast:
        items = [blob for _, blob in page]
    else:
        dicts = []
        for _, blob in page:
            d = _project(orjson.loads(blob), out_props)
            if decorate:
                d = {**decorate, **d}
            dicts.append(d)
        if expand:
            dicts = _with_managers(app, req.tenant, dicts)
        items = [orjson.dumps(d) for d in dicts]
    n = None
    if count:
        if filt is None and total is not None:
            n = total()
        elif not more and not after:
            n = len(page)  # the first page already holds every match
        else:
            n, cursor = 0, ""
            while True:
                rows = fetch(cursor, 5000, True)
                n += sum(1 for _, b in rows if filt is None or filt.predicate(orjson.loads(b)))
                if len(rows) < 5000:
                    break
                cursor = rows[-1][0]
    return GraphResponse(200, _assemble(_context(base, context, select), items, next_link, n))


def _get_active(app: SandboxApp, tenant: Tenant, key: str) -> dict:
    user = app.store.get_user(tenant, key)
    if user is None:
        raise _not_found(key)
    return user


def _entity(base: str, what: str, d: dict, odata_type: str | None = None) -> dict:
    head = {"@odata.context": _context(base, what)}
    if odata_type:
        head["@odata.type"] = odata_type
    return {**head, **d}


def _validate_user_body(app: SandboxApp, tenant: Tenant, body: dict, user_id: str | None) -> dict:
    """Check names and types like Graph; returns the properties to store (secrets dropped)."""
    known = set(USER_PROPS) - READ_ONLY_USER_PROPS
    exts = _extensions(app, tenant)
    clean: dict = {}
    for k, v in body.items():
        if k in ("passwordProfile", "passwordPolicies", "@odata.type"):
            continue  # accepted, never stored: the sandbox keeps no passwords
        if k.startswith("extension_"):
            if k not in exts:
                raise GraphError(400, "Request_BadRequest",
                                 f"Property '{k}' does not exist as a declared property or extension property. "
                                 f"Register it first with POST /applications/{{id}}/extensionProperties in tenant "
                                 f"'{tenant.name}'.")
            kinds = _EXT_TYPES.get(exts[k], (str,))
            if not (v is None or (isinstance(v, kinds) and not (bool not in kinds and isinstance(v, bool)))):
                raise GraphError(400, "Request_BadRequest",
                                 f"Invalid value specified for property '{k}' of resource 'User' (its dataType "
                                 f"is {exts[k]}).")
            clean[k] = v
            continue
        if k not in known:
            what = "is read-only" if k in READ_ONLY_USER_PROPS else "does not exist on type 'microsoft.graph.user'"
            raise GraphError(400, "Request_BadRequest", f"Invalid property '{k}': the property {what}.")
        ok = (v is None or isinstance(v, bool)) if k in BOOL_PROPS else (
            isinstance(v, list) and all(isinstance(x, str) for x in v)) if k in LIST_PROPS else (
            v is None or isinstance(v, str))
        if k == "accountEnabled" and v is None:
            ok = False
        if not ok:
            raise GraphError(400, "Request_BadRequest",
                             f"Invalid value specified for property '{k}' of resource 'User'.")
        clean[k] = v
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
    return clean


# ---- users ---------------------------------------------------------------------------------------
def list_users(app: SandboxApp, req: GraphRequest, base: str) -> GraphResponse:
    t = req.tenant
    return _list(app, req, base, kind="users", props=user_props(app, t), default_props=DEFAULT_USER_PROPS,
                 context="users", fast_default=True,
                 fetch=lambda after, n, full: app.store.page_users(t, after, n, with_full=full),
                 lookup=lambda col, v: app.store.users_by_column(t, col, v),
                 fetch_text=lambda after, n, needle: app.store.page_users_containing(t, after, n, needle),
                 total=lambda: t.user_count, can_expand=True)


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
    _refuse_unsupported(req)
    select = parse_select(req.param("select"), user_props(app, req.tenant))
    user = _get_active(app, req.tenant, key)
    return _ok(_entity(base, "users/$entity", _project(user, select or DEFAULT_USER_PROPS)))


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
            "createdDateTime": iso(app.clock.now()), **clean}
    user = app.store.create_user(req.tenant, user)
    return _ok(_entity(base, "users/$entity", _project(user, DEFAULT_USER_PROPS)), 201)


def patch_user(app: SandboxApp, req: GraphRequest, base: str, key: str) -> GraphResponse:
    user = _get_active(app, req.tenant, key)
    clean = _validate_user_body(app, req.tenant, req.json(), user["id"])
    if clean:
        app.store.update_user(req.tenant, user["id"], clean)
    return _no_content()


def delete_user(app: SandboxApp, req: GraphRequest, base: str, key: str) -> GraphResponse:
    user = _get_active(app, req.tenant, key)
    now = app.clock.now()
    app.store.soft_delete(req.tenant, user["id"], iso(now), now)
    return _no_content()


def get_manager(app: SandboxApp, req: GraphRequest, base: str, key: str) -> GraphResponse:
    user = _get_active(app, req.tenant, key)
    select = parse_select(req.param("select"), user_props(app, req.tenant))
    manager = app.store.manager_of(req.tenant, user["id"])
    if manager is None:
        raise _not_found("manager")
    return _ok(_entity(base, "directoryObjects/$entity", _project(manager, select or DEFAULT_USER_PROPS),
                       _USER_TYPE))


def put_manager(app: SandboxApp, req: GraphRequest, base: str, key: str) -> GraphResponse:
    user = _get_active(app, req.tenant, key)
    ref = req.json().get("@odata.id")
    if not isinstance(ref, str) or not ref.strip("/"):
        raise GraphError(400, "Request_BadRequest", "The body must be {\"@odata.id\": "
                         "\"https://graph.microsoft.com/v1.0/users/{id}\"}.")
    manager_key = ref.rstrip("/").rsplit("/", 1)[-1]
    manager = app.store.get_user(req.tenant, manager_key)
    if manager is None:
        raise _not_found(manager_key)
    if manager["id"] == user["id"]:
        raise GraphError(400, "Request_BadRequest", f"User '{user['id']}' cannot be their own manager.")
    app.store.set_manager(req.tenant, user["id"], manager["id"])
    return _no_content()


def delete_manager(app: SandboxApp, req: GraphRequest, base: str, key: str) -> GraphResponse:
    user = _get_active(app, req.tenant, key)
    app.store.set_manager(req.tenant, user["id"], None)
    return _no_content()


# ---- invitations ---------------------------------------------------------------------------------
def create_invitation(app: SandboxApp, req: GraphRequest, base: str) -> GraphResponse:
    t = req.tenant
    body = req.json()
    if not t.allow_invitations:
        raise GraphError(403, "Authorization_RequestDenied",
                         f"Guest invitations not allowed for your company (tenant '{t.name}'). Contact your "
                         "company administrator, or allow invitations with the sandbox admin route.")
    email = body.get("invitedUserEmailAddress")
    redirect = body.get("inviteRedirectUrl")
    if not isinstance(email, str) or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
        raise GraphError(400, "BadRequest", "The invitedUserEmailAddress property is missing or not a valid "
                         "e-mail address.")
    if not isinstance(redirect, str) or not redirect:
        raise GraphError(400, "BadRequest", "The inviteRedirectUrl property is required.")
    user_type = body.get("invitedUserType") or "Guest"
    if user_type not in ("Guest", "Member"):
        raise GraphError(400, "BadRequest", "invitedUserType must be 'Guest' or 'Member'.")
    display = body.get("invitedUserDisplayName")
    existing = app.store.find_active_by_mail(t, email)
    if existing is not None and existing.get("creationType") != "Invitation":
        raise GraphError(400, "Request_BadRequest", "Another object with the same value for property "
                         f"proxyAddresses already exists (mail '{email}' belongs to a member of tenant '{t.name}').")
    now = app.clock.now()
    if existing is None:
        local, domain = email.rsplit("@", 1)
        upn = f"{local}_{domain}#EXT#@{t.domain}"
        if app.store.upn_taken(t, upn):
            upn = f"{local}_{domain}{uuid.uuid4().hex[:4]}#EXT#@{t.domain}"
        user = {"id": str(uuid.uuid4()), "userPrincipalName": upn, "mail": email, "otherMails": [email],
                "displayName": display or local, "businessPhones": [], "accountEnabled": True,
                "userType": user_type, "creationType": "Invitation", "externalUserState": "PendingAcceptance",
                "externalUserStateChangeDateTime": iso(now), "showInAddressList": None,
                "createdDateTime": iso(now)}
        user = app.store.create_user(t, user)
    else:
        user = existing
    inv_id = str(uuid.uuid4())
    resp = {
        "@odata.context": _context(base, "invitations/$entity"),
        "id": inv_id,
        "inviteRedeemUrl": f"{base}/redeem?rd=https%3a%2f%2finvitations.microsoft.com%2fredeem%2f%3ftenant%3d"
                           f"{t.tenant_id}%26user%3d{user['id']}%26ticket%3d{uuid.uuid4().hex}",
        "invitedUserDisplayName": display,
        "invitedUserType": user_type,
        "invitedUserEmailAddress": email,
        "sendInvitationMessage": bool(body.get("sendInvitationMessage", False)),
        "resetRedemption": bool(body.get("resetRedemption", False)),
        "inviteRedirectUrl": redirect,
        "status": user.get("externalUserState") or "PendingAcceptance",
        "invitedUserMessageInfo": body.get("invitedUserMessageInfo") or {
            "messageLanguage": None, "ccRecipients": [{"emailAddress": {"name": None, "address": None}}],
            "customizedMessageBody": None},
        "invitedUser": {"id": user["id"]},
    }
    return _ok(resp, 201)


# ---- deleted items -------------------------------------------------------------------------------
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
    return _ok(_entity(base, "directoryObjects/$entity", _project(user, DEFAULT_USER_PROPS), _USER_TYPE))


def purge_deleted(app: SandboxApp, req: GraphRequest, base: str, key: str) -> GraphResponse:
    row = app.store.get_user_row(req.tenant, key, states=(DELETED,))
    if row is None:
        raise _not_found(key)
    app.store.purge_one(req.tenant, row[0])
    return _no_content()


# ---- delta ---------------------------------------------------------------------------------------
def _resync(tenant: Tenant) -> GraphError:
    return GraphError(400, "syncStateNotFound",
                      "The sync state generation is not found. The delta token is expired and data must be "
                      f"synchronized again (tenant '{tenant.name}': start a new delta round without a token).")


def users_delta(app: SandboxApp, req: GraphRequest, base: str) -> GraphResponse:
    t = req.tenant
    now = app.clock.now()
    app.store.purge_expired(t, now)
    props = user_props(app, t)
    page = DELTA_PAGE
    prefer = req.headers.get("prefer") or ""
    m = re.search(r"odata\.maxpagesize=(\d+)", prefer)
    if m:
        page = max(1, min(999, int(m.group(1))))
    dtoken, stoken = req.param("deltatoken"), req.param("skiptoken")
    ctx = _context(base, "users")
    link = f"{base}/v1.0/users/delta"
    if dtoken is not None and dtoken.lower() == "latest":
        select = parse_select(req.param("select"), props)
        st = {"k": "delta", "tid": t.tenant_id, "m": "d", "s": t.seq, "iat": now, "sel": select,
              "x": _expand_manager(req, req.param("expand"))}
        return GraphResponse(200, _assemble(ctx, [], delta_link=f"{link}?$deltatoken={app.encode_token(st)}"))
    if dtoken is not None or stoken is not None:
        st = app.decode_token(dtoken if dtoken is not None else stoken)
        if not st or st.get("k") != "delta" or st.get("tid") != t.tenant_id:
            raise _resync(t)
        if now - float(st["iat"]) > DELTA_TOKEN_TTL_S or int(st["s"]) < t.min_seq:
            raise _resync(t)
    else:
        if req.param("filter"):
            raise GraphError(400, "Request_UnsupportedQuery", "The sandbox's users/delta does not support $filter; "
                             "select the properties you need and filter on the client.")
        select = parse_select(req.param("select"), props)
        st = {"k": "delta", "tid": t.tenant_id, "m": "i", "s": t.seq, "a": "", "iat": now, "sel": select,
              "x": _expand_manager(req, req.param("expand"))}
    select = st.get("sel")
    expand = bool(st.get("x"))
    # Graph keeps the query (incl. $expand) in the state token, so later rounds expand too.
    project = (lambda blobs: [orjson.dumps(d) for d in _with_managers(  # noqa: E731
        app, t, [_project(orjson.loads(b), out_props) for b in blobs])]) if expand else \
        (lambda blobs: [orjson.dumps(_project(orjson.loads(b), out_props)) for b in blobs])
    out_props = ["id", *[p for p in (select or DEFAULT_USER_PROPS) if p != "id"]]
    items: list[bytes] = []
    if st["m"] == "i":  # initial round: every active user, by id; changes after s come in the next round
        rows = app.store.page_users(t, st["a"], page + 1)
        items.extend(project([blob for _, blob in rows[:page]]))
        if len(rows) > page:
            nxt = {**st, "a": rows[page - 1][0]}
            return GraphResponse(200, _assemble(ctx, items, next_link=f"{link}?$skiptoken={app.encode_token(nxt)}"))
        done = {"k": "delta", "tid": t.tenant_id, "m": "d", "s": st["s"], "iat": now, "sel": select, "x": expand}
        return GraphResponse(200, _assemble(ctx, items, delta_link=f"{link}?$deltatoken={app.encode_token(done)}"))
    rows = app.store.changes_since(t, int(st["s"]), page + 1)
    for _seq, uid, state, blob in rows[:page]:
        if state == ACTIVE:
            items.extend(project([blob]))
        else:
            reason = "changed" if state == DELETED else "deleted"
            items.append(orjson.dumps({"id": uid, "@removed": {"reason": reason}}))
    if len(rows) > page:
        nxt = {**st, "s": rows[page - 1][0]}
        return GraphResponse(200, _assemble(ctx, items, next_link=f"{link}?$skiptoken={app.encode_token(nxt)}"))
    done = {"k": "delta", "tid": t.tenant_id, "m": "d", "s": t.seq, "iat": now, "sel": select, "x": expand}
    return GraphResponse(200, _assemble(ctx, items, delta_link=f"{link}?$deltatoken={app.encode_token(done)}"))


# ---- applications / directory extensions -----------------------------------------------------------
def _own_app(req: GraphRequest, app_id: str) -> None:
    t = req.tenant
    if app_id.lower() not in (t.app_object_id.lower(),):
        raise GraphError(404, "Request_ResourceNotFound",
                         f"Resource '{app_id}' does not exist or one of its queried reference-property objects are "
                         f"not present. The app object id of tenant '{t.name}' is in sandbox.json "
                         "(app_object_id), not the client id.")


def get_application(app: SandboxApp, req: GraphRequest, base: str, app_id: str) -> GraphResponse:
    _own_app(req, app_id)
    t = req.tenant
    return _ok(_entity(base, "applications/$entity", {
        "id": t.app_object_id, "appId": t.client_id, "displayName": f"xts sync ({t.name})",
        "signInAudience": "AzureADMyOrg"}))


def list_extensions(app: SandboxApp, req: GraphRequest, base: str, app_id: str) -> GraphResponse:
    _own_app(req, app_id)
    exts = app.store.extensions(req.tenant, req.tenant.app_object_id)
    return _ok({"@odata.context": _context(base, f"applications('{app_id}')/extensionProperties"), "value": exts})


def create_extension(app: SandboxApp, req: GraphRequest, base: str, app_id: str) -> GraphResponse:
    _own_app(req, app_id)
    t = req.tenant
    body = req.json()
    name = body.get("name")
    if not isinstance(name, str) or not _EXT_NAME.match(name):
        raise GraphError(400, "Request_BadRequest", "Property 'name' is required and must be letters, digits or "
                         "underscores, starting with a letter.")
    data_type = body.get("dataType", "String")
    if data_type not in ("Binary", "Boolean", "DateTime", "Integer", "LargeInteger", "String"):
        raise GraphError(400, "Request_BadRequest", f"Invalid value specified for property 'dataType': "
                         f"'{data_type}'.")
    full = f"extension_{t.client_id.replace('-', '')}_{name}"
    if full in _extensions(app, t):
        raise GraphError(400, "Request_BadRequest", f"Property with name '{full}' already exists on application "
                         f"'{app_id}' of tenant '{t.name}'.")
    ext = app.store.register_extension(t, t.app_object_id, full, body)
    app.__dict__.setdefault("_ext_cache", {}).pop(t.tenant_id, None)
    return _ok(_entity(base, f"applications('{app_id}')/extensionProperties/$entity", ext), 201)


# ---- groups --------------------------------------------------------------------------------------
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


# ---- directory roles -----------------------------------------------------------------------------
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
    """Members of an activated role (by object id or `roleTemplateId=...`); the sandbox assigns users only."""
    t = req.tenant
    role_id = _role(app, req, key)["id"]
    return _list(app, req, base, kind="members", props=user_props(app, t), default_props=DEFAULT_USER_PROPS,
                 context="directoryObjects", decorate={"@odata.type": _USER_TYPE},
                 fetch=lambda after, n, full: app.store.page_role_members(t, role_id, after, n))


def get_organization(app: SandboxApp, req: GraphRequest, base: str) -> GraphResponse:
    t = req.tenant
    org = {"id": t.tenant_id, "displayName": t.name, "verifiedDomains": [
        {"capabilities": "Email, OfficeCommunicationsOnline", "isDefault": True, "isInitial": True,
         "name": t.domain, "type": "Managed"}]}
    return _ok({"@odata.context": _context(base, "organization"), "value": [org]})


# ---- cross-tenant access partners ------------------------------------------------------------------
def default_partner(partner_id: str) -> dict:
    return {"tenantId": partner_id, "isServiceProvider": None, "isInMultiTenantOrganization": False,
            "inboundTrust": None, "b2bCollaborationOutbound": None, "b2bCollaborationInbound": None,
            "b2bDirectConnectOutbound": None, "b2bDirectConnectInbound": None, "tenantRestrictions": None,
            "automaticUserConsentSettings": {"inboundAllowed": False, "outboundAllowed": False}}


def _partner_view(data: dict) -> dict:
    return {k: v for k, v in data.items() if k != "identitySynchronization"}


def list_partners(app: SandboxApp, req: GraphRequest, base: str) -> GraphResponse:
    items = [_partner_view(p) for p in app.store.list_partners(req.tenant)]
    return _ok({"@odata.context": _context(base, "policies/crossTenantAccessPolicy/partners"), "value": items})


def get_partner(app: SandboxApp, req: GraphRequest, base: str, pid: str) -> GraphResponse:
    data = app.store.get_partner(req.tenant, pid)
    if data is None:
        raise _not_found(pid)
    return _ok(_entity(base, "policies/crossTenantAccessPolicy/partners/$entity", _partner_view(data)))


def patch_partner(app: SandboxApp, req: GraphRequest, base: str, pid: str) -> GraphResponse:
    body = req.json()
    data = app.store.get_partner(req.tenant, pid)
    if data is None:
        raise _not_found(pid)
    allowed = set(default_partner(pid)) - {"tenantId"}
    for k in body:
        if k not in allowed:
            raise GraphError(400, "Request_BadRequest", f"Invalid property '{k}' on crossTenantAccessPolicy"
                             "ConfigurationPartner.")
    data.update(body)
    app.store.put_partner(req.tenant, pid, data)
    return _no_content()


def get_identity_sync(app: SandboxApp, req: GraphRequest, base: str, pid: str) -> GraphResponse:
    data = app.store.get_partner(req.tenant, pid)
    sync = (data or {}).get("identitySynchronization")
    if sync is None:
        raise _not_found(f"{pid}/identitySynchronization")
    ctx = f"policies/crossTenantAccessPolicy/partners('{pid}')/identitySynchronization/$entity"
    return _ok(_entity(base, ctx, sync))


def put_identity_sync(app: SandboxApp, req: GraphRequest, base: str, pid: str) -> GraphResponse:
    body = req.json()
    inbound = body.get("userSyncInbound")
    if not isinstance(inbound, dict) or not isinstance(inbound.get("isSyncAllowed"), bool):
        raise GraphError(400, "Request_BadRequest", "userSyncInbound.isSyncAllowed (true or false) is required.")
    data = app.store.get_partner(req.tenant, pid) or default_partner(pid.lower())
    data["identitySynchronization"] = {"tenantId": pid.lower(), "displayName": body.get("displayName"),
                                       "userSyncInbound": {"isSyncAllowed": inbound["isSyncAllowed"]}}
    app.store.put_partner(req.tenant, pid, data)
    return _no_content()

