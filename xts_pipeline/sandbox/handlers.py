"""Graph v1.0 handlers of the sandbox: users, manager, invitations, deleted items, delta, extensions,
groups, organization and cross-tenant access partners. Each takes (app, request, base_url, *path ids).
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING

import orjson

from . import validation
from .clock import iso
from .odata import parse_filter, parse_select
from .store import ACTIVE, DEFAULT_USER_PROPS, DELETED
from .wire import (
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


_EXPAND_MANAGER = re.compile(r"^\s*manager\s*$", re.IGNORECASE)


def _expand_manager(req: GraphRequest, text: str | None) -> bool:
    """True for `$expand=manager`, the one expansion the sandbox serves on users.

    Query options nested in `$expand` (`manager($select=id)`) are refused: the directory does not apply
    them to directory objects (docs/sandbox.md, "Where Microsoft is silent"); plain `$expand=manager`
    returns the manager object.
    """
    if text is None:
        return False
    if "(" in text and re.match(r"^\s*manager\s*\(", text, re.IGNORECASE):
        raise GraphError(400, "Request_BadRequest",
                         f"Query option '$select' nested in $expand ('{text}') is not supported on directory "
                         "objects; use $expand=manager.")
    if not _EXPAND_MANAGER.match(text):
        raise GraphError(400, "Request_UnsupportedQuery",
                         f"The xts sandbox supports only $expand=manager on {req.path}, not '{text}' "
                         "(see docs/sandbox.md, 'What is not covered').")
    return True


def _with_managers(app: SandboxApp, tenant: Tenant, users: list[dict]) -> list[dict]:
    """Graph's shape for an expanded manager: the manager's directoryObject, or no key when there is none."""
    managers = app.store.manager_data(tenant, [u["id"] for u in users if u.get("id")])
    for u in users:
        m = managers.get(u.get("id"))
        if m:
            u["manager"] = {"@odata.type": _USER_TYPE, **_project(m, DEFAULT_USER_PROPS)}
    return users


# $orderby: user-list.md, "Supports ... $orderBy" on displayName and userPrincipalName by default; other
# properties are sortable only as advanced queries (concepts/aad-advanced-queries.md).
_ORDERBY_DEFAULT = {"displayName", "userPrincipalName"}
_ORDERBY_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)(?:\s+(asc|desc))?\s*$", re.IGNORECASE)
_SEARCH_RE = re.compile(r'^"([A-Za-z_][A-Za-z0-9_]*):([^"]*)"$')
_SEARCH_PROPS = {"displayName", "description", "mail", "mailNickname", "userPrincipalName", "givenName",
                 "surname", "jobTitle", "department", "officeLocation", "employeeId", "proxyAddresses"}


def _orderby(text: str | None, props: list[str], eventual: bool) -> tuple[str, bool] | None:
    if text is None:
        return None
    m = _ORDERBY_RE.match(text)
    canon = {p.lower(): p for p in props}
    prop = canon.get(m.group(1).lower()) if m else None
    if prop is None:
        raise GraphError(400, "Request_BadRequest", f"Invalid $orderby expression '{text}': one property, "
                         "optionally asc or desc.")
    if prop not in _ORDERBY_DEFAULT and not eventual:
        raise GraphError(400, "Request_UnsupportedQuery", f"Sorting on '{prop}' is an advanced query: send "
                         "ConsistencyLevel: eventual and $count=true (concepts/aad-advanced-queries.md).")
    return prop, bool(m.group(2) and m.group(2).lower() == "desc")


def _search(text: str, props: list[str]):
    """`$search="prop:words"` clauses joined by AND/OR: tokenized, case-insensitive prefix match per word
    (concepts/search-query-parameter.md, directory objects)."""
    canon = {p.lower(): p for p in props}
    clauses, joins = [], []
    for part in re.split(r"\s+(AND|OR)\s+", text.strip()):
        if part in ("AND", "OR"):
            joins.append(part)
            continue
        m = _SEARCH_RE.match(part.strip())
        prop = canon.get(m.group(1).lower()) if m else None
        if prop is None or prop not in _SEARCH_PROPS:
            raise GraphError(400, "Request_BadRequest", f"Invalid $search '{text}': use \"property:text\" with a "
                             f"searchable property ({', '.join(sorted(_SEARCH_PROPS))}).")
        clauses.append((prop, [w for w in re.split(r"\W+", m.group(2).lower()) if w]))

    def hit(u: dict, prop: str, words: list[str]) -> bool:
        vals = u.get(prop)
        vals = vals if isinstance(vals, list) else [vals]
        toks = [t for v in vals if isinstance(v, str) for t in re.split(r"\W+", v.lower()) if t]
        return all(any(t.startswith(w) for t in toks) for w in words)

    def pred(u: dict) -> bool:
        result = hit(u, *clauses[0])
        for op, clause in zip(joins, clauses[1:], strict=False):
            result = (result and hit(u, *clause)) if op == "AND" else (result or hit(u, *clause))
        return result
    return pred


def _list(app: SandboxApp, req: GraphRequest, base: str, *, kind: str, props: list[str],
          default_props, context: str, fetch, entity: str = "user", decorate: dict | None = None,
          fast_default: bool = False, lookup=None, total=None, fetch_text=None,
          can_expand: bool = False, hide=None) -> GraphResponse:
    """Generic paged listing over rows ordered by id (`fetch(after, limit, full)` -> [(id, blob)])."""
    allow = ("orderby", "search") + (("expand",) if can_expand else ()) if entity == "user" else ()
    _refuse_unsupported(req, allow=allow)
    key = f"list:{req.tenant.tenant_id}:{req.path.lower()}"
    token = req.param("skiptoken")
    eventual = _eventual(req)
    if token:
        st = app.decode_token(token)
        if not st or st.get("k") != key:
            raise GraphError(400, "Request_BadRequest",
                             f"The $skiptoken for {req.path} of tenant '{req.tenant.name}' is not valid; follow "
                             "@odata.nextLink exactly as returned, or start the listing again.")
        select, filt_text, top, after = st["s"], st["f"], st["t"], st["a"]
        expand, order, search_text = bool(st.get("x")), st.get("o"), st.get("q")
        count = False  # @odata.count comes on the first page only (concepts/paging.md)
        if select is not None:
            select = parse_select(",".join(select), props, entity)
    else:
        select = parse_select(req.param("select"), props, entity)
        filt_text = req.param("filter")
        top = _parse_top(req)
        # concepts/aad-advanced-queries.md: $count needs ConsistencyLevel: eventual; Graph ignores a
        # $count=true sent without it (no @odata.count) rather than failing the request.
        count = (req.param("count") or "").lower() == "true" and eventual
        after = ""
        expand = can_expand and _expand_manager(req, req.param("expand"))
        order = _orderby(req.param("orderby"), props, eventual and count) if entity == "user" else None
        search_text = req.param("search") if entity == "user" else None
        if search_text is not None and not eventual:
            raise GraphError(400, "Request_UnsupportedQuery", "Request with $search query parameter only works "
                             "through MSGraph with a special request header: 'ConsistencyLevel: eventual'")
    filt = parse_filter(filt_text, props, entity) if filt_text else None
    if not token:
        if filt is not None and filt.advanced and not (eventual and count):
            raise GraphError(400, "Request_UnsupportedQuery",
                             f"Unsupported or invalid query filter clause specified for '{filt_text}': it is an "
                             "advanced query (ne, not, endsWith, null comparisons, or a property such as "
                             "officeLocation, companyName or mobilePhone that needs it even for eq); send the "
                             "header 'ConsistencyLevel: eventual' and $count=true "
                             "(concepts/aad-advanced-queries.md).")
        advanced = (eventual and count) or search_text is not None
        if expand and advanced:
            raise GraphError(400, "Request_UnsupportedQuery", "$expand is not supported with advanced queries "
                             "(ConsistencyLevel: eventual with $count or $search) on directory objects "
                             "(concepts/aad-advanced-queries.md).")
    search = _search(search_text, props) if search_text else None
    if search is not None:
        base_pred = filt.predicate if filt is not None else (lambda u: True)
        from .odata import ODataQuery
        filt = ODataQuery(lambda u: base_pred(u) and search(u), True, set(), None)
    out_props = select or default_props
    fast = fast_default and select is None and filt is None and not decorate and not expand and not order
    matched: list[tuple[str, bytes]] = []
    if order:
        # Sorted listings read every match, sort, then page by position (the token keeps the offset).
        cursor, rows_all = "", []
        while True:
            rows = fetch(cursor, 5000, True)
            rows_all.extend(r for r in rows if filt is None or filt.predicate(orjson.loads(r[1])))
            if len(rows) < 5000:
                break
            cursor = rows[-1][0]
        prop, desc = order
        dicts = [(orjson.loads(b), rid, b) for rid, b in rows_all]
        dicts.sort(key=lambda x: ((x[0].get(prop) is None) != desc, str(x[0].get(prop) or "").lower(), x[1]),
                   reverse=desc)
        offset = int(after or 0)
        matched = [(rid, b) for _, rid, b in dicts[offset:offset + top + 1]]
    elif filt is not None and lookup is not None and filt.lookup and filt.lookup[0] in ("id", "userPrincipalName",
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
        pos = str(int(after or 0) + top) if order else page[-1][0]
        state = {"k": key, "s": select, "f": filt_text, "t": top, "a": pos, "x": expand, "o": order,
                 "q": search_text}
        next_link = f"{base}/v1.0{req.path}?$skiptoken={app.encode_token(state)}"
    if hide is not None:  # replication lag: not yet visible to reads (the page may come out short)
        page = [r for r in page if not hide(r[0])]
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
        elif not more:
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


def _get_active(app: SandboxApp, tenant: Tenant, key: str, access: str | None = None) -> dict:
    """The active user by id or UPN; with replication lag on, a just-written one is not found yet by reads
    (and a just-created one not by writes either: user-list.md, "This request might have replication
    delays for users that were recently created, updated, or deleted")."""
    user = app.store.get_user(tenant, key)
    if user is None or (access is not None and app.lagging(tenant, user["id"], writes=access == "write")):
        raise _not_found(key)
    return user


def _entity(base: str, what: str, d: dict, odata_type: str | None = None) -> dict:
    head = {"@odata.context": _context(base, what)}
    if odata_type:
        head["@odata.type"] = odata_type
    return {**head, **d}


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


# ---- users ---------------------------------------------------------------------------------------
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


# ---- invitations ---------------------------------------------------------------------------------
def create_invitation(app: SandboxApp, req: GraphRequest, base: str) -> GraphResponse:
    t = req.tenant
    body = req.json()
    if not t.allow_invitations:
        raise GraphError(403, "Authorization_RequestDenied",
                         f"Guest invitations not allowed for your company (tenant '{t.name}'). Contact your "
                         "company administrator, or allow invitations with the sandbox admin route.")
    unknown = sorted(k for k in body if k not in validation.INVITATION_PROPS)
    if unknown:
        # resources/invitation.md lists the invitation's properties; anything else is not on the type.
        raise GraphError(400, "BadRequest", f"Invalid property '{unknown[0]}': it does not exist on type "
                         "'microsoft.graph.invitation' (a user's attributes are set with PATCH /users/{id}).")
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
                "externalUserStateChangeDateTime": iso(now), "showInAddressList": False,
                "onPremisesSyncEnabled": None, "createdDateTime": iso(now)}
        user = app.store.create_user(t, user)
        app.note_write(t, user["id"], created=True)
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
    app.note_write(t, user["id"], created=True)
    return _ok(_entity(base, "directoryObjects/$entity", _project(user, DEFAULT_USER_PROPS), _USER_TYPE))


def purge_deleted(app: SandboxApp, req: GraphRequest, base: str, key: str) -> GraphResponse:
    row = app.store.get_user_row(req.tenant, key, states=(DELETED,))
    if row is None:
        raise _not_found(key)
    app.store.purge_one(req.tenant, row[0])
    return _no_content()


# ---- delta ----------------------------------------------------------------------------------------
def _resync(tenant: Tenant) -> GraphError:
    # Graph's documented answer to an expired token: "you will receive a BadRequest response with the error
    # code 'syncStateNotFound' and the following error message: 'The sync state generation is not found. The
    # delta token is expired and data must be synchronized again.'" (devblogs.microsoft.com, "Duration of
    # change tracking tokens for identity and education resources", 2020-07-03; concepts/delta-query-overview.md)
    return GraphError(400, "syncStateNotFound",
                      "The sync state generation is not found. The delta token is expired and data must be "
                      f"synchronized again (tenant '{tenant.name}': start a new delta round without a token).")


_DELTA_ID_FILTER = re.compile(r"^\s*id\s+eq\s+'[^']*'(\s+or\s+id\s+eq\s+'[^']*')*\s*$", re.IGNORECASE)
_DELTA_MAX_IDS = 50
_MANAGER_REF = "#microsoft.graph.user"


def _delta_query(app: SandboxApp, req: GraphRequest, props: list[str]) -> tuple[list[str] | None, bool, list[str]]:
    """(select without manager, whether manager is tracked, ids of `$filter=id eq ...`) of a first call.

    concepts/delta-query-overview.md: "For the user and group resources, there are restrictions on using
    some query parameters: If a `$select` query parameter is used, the parameter indicates that the client
    prefers to only track changes on the properties or relationships specified in the `$select` statement
    ... `$select` also supports manager and members navigation properties ... `$expand` isn't supported ...
    Only `$filter` with `id` eq is supported"; api/user-delta.md allows up to 50 ids.
    """
    for opt in ("expand", "orderby", "search", "top", "skip", "count", "apply", "compute"):
        if req.param(opt) is not None:
            raise GraphError(400, "Request_UnsupportedQuery",
                             f"The query option ${opt} is not supported on users/delta: delta queries on users "
                             "support $select (including the manager relationship, reported as manager@delta) "
                             "and $filter on id only (concepts/delta-query-overview.md).")
    select = parse_select(req.param("select"), [*props, "manager"])
    manager = bool(select and "manager" in select)
    if select is not None:
        select = [p for p in select if p != "manager"] or ["id"]
    ids: list[str] = []
    text = req.param("filter")
    if text:
        if not _DELTA_ID_FILTER.match(text):
            raise GraphError(400, "Request_UnsupportedQuery",
                             f"Unsupported query filter '{text}' on users/delta: only id eq '...' (ORed, up to "
                             f"{_DELTA_MAX_IDS}) is supported (concepts/delta-query-overview.md).")
        ids = re.findall(r"'([^']*)'", text)
        if len(ids) > _DELTA_MAX_IDS:
            raise GraphError(400, "Request_UnsupportedQuery",
                             f"users/delta tracks at most {_DELTA_MAX_IDS} ids in $filter, not {len(ids)} "
                             "(api/user-delta.md).")
    return select, manager, ids


def _delta_item(d: dict, out_props: list[str], full: bool, uid: str | None = None) -> dict:
    """Graph's delta shape: a full item omits properties never set ("If the property has never been set
    before it will not be included in the response at all", api/user-delta.md); an update carries "at
    least the updated properties", so a cleared one comes as null."""
    item = {"id": uid or d["id"]}
    for k in out_props:
        if k in d and k != "id" and (not full or d[k] is not None):
            item[k] = d[k]
    return item


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
        select, manager, ids = _delta_query(app, req, props)
        st = {"k": "delta", "tid": t.tenant_id, "m": "d", "s": t.seq, "iat": now, "sel": select, "mgr": manager,
              "ids": ids}
        return GraphResponse(200, _assemble(ctx, [], delta_link=f"{link}?$deltatoken={app.encode_token(st)}"))
    if dtoken is not None or stoken is not None:
        st = app.decode_token(dtoken if dtoken is not None else stoken)
        if not st or st.get("k") != "delta" or st.get("tid") != t.tenant_id:
            raise _resync(t)
        if now - float(st["iat"]) > DELTA_TOKEN_TTL_S or int(st["s"]) < t.min_seq:
            raise _resync(t)
    else:
        select, manager, ids = _delta_query(app, req, props)
        st = {"k": "delta", "tid": t.tenant_id, "m": "i", "s": t.seq, "a": "", "iat": now, "sel": select,
              "mgr": manager, "ids": ids}
    select, manager, ids = st.get("sel"), bool(st.get("mgr")), set(st.get("ids") or ())
    known = set(props)
    out_props = ["id", *[p for p in (select or DEFAULT_USER_PROPS) if p != "id" and p in known]]

    def done_link() -> str:
        done = {"k": "delta", "tid": t.tenant_id, "m": "d", "s": t.seq, "iat": now, "sel": select, "mgr": manager,
                "ids": sorted(ids)}
        return f"{link}?$deltatoken={app.encode_token(done)}"

    items: list[bytes] = []
    if st["m"] == "i":  # initial round: every active user, by id; changes after s come in the next round
        if ids:
            rows = sorted((r for i in ids for r in app.store.users_by_column(t, "id", i)), key=lambda r: r[0])
            rows = [r for r in rows if r[0] > st["a"]][:page + 1]
        else:
            rows = app.store.page_users(t, st["a"], page + 1)
        rows = [r for r in rows if not app.lagging(t, r[0])]
        dicts = [_delta_item(orjson.loads(blob), out_props, True) for _, blob in rows[:page]]
        if manager:
            mids = app.store.managers_for(t, [d["id"] for d in dicts])
            for d in dicts:
                if mids.get(d["id"]):
                    d["manager@delta"] = [{"@odata.type": _MANAGER_REF, "id": mids[d["id"]]}]
        items.extend(orjson.dumps(d) for d in dicts)
        if len(rows) > page:
            nxt = {**st, "a": rows[page - 1][0]}
            return GraphResponse(200, _assemble(ctx, items, next_link=f"{link}?$skiptoken={app.encode_token(nxt)}"))
        return GraphResponse(200, _assemble(ctx, items, delta_link=done_link()))
    # Later rounds: one item per change event, so "a single entity can be contained multiple times in the
    # response" (api/user-delta.md), each with the properties that event changed.
    rows = app.store.changes_since(t, int(st["s"]), page + 1)
    for _seq, uid, state, blob in rows[:page]:
        if ids and uid not in ids:
            continue
        if state != ACTIVE:
            reason = "changed" if state == DELETED else "deleted"
            items.append(orjson.dumps({"id": uid, "@removed": {"reason": reason}}))
            continue
        patch = orjson.loads(blob)
        if "@manager" in patch:
            if not manager:
                continue
            new, old = patch.get("@manager"), patch.get("@old_manager")
            ref = [{"@odata.type": _MANAGER_REF, "id": new}] if new else \
                [{"@odata.type": _MANAGER_REF, "id": old, "@removed": {"reason": "deleted"}}] if old else []
            if ref:
                items.append(orjson.dumps({"id": uid, "manager@delta": ref}))
            continue
        full = "id" in patch  # a create or restore carries the whole object
        item = _delta_item(patch, out_props, full, uid)
        if full and manager:
            mid = app.store.managers_for(t, [uid]).get(uid)
            if mid:
                item["manager@delta"] = [{"@odata.type": _MANAGER_REF, "id": mid}]
        if len(item) > 1:  # only changes to tracked ($select-ed) properties are reported
            items.append(orjson.dumps(item))
    if len(rows) > page:
        nxt = {**st, "s": rows[page - 1][0]}
        return GraphResponse(200, _assemble(ctx, items, next_link=f"{link}?$skiptoken={app.encode_token(nxt)}"))
    return GraphResponse(200, _assemble(ctx, items, delta_link=done_link()))


# ---- applications / directory extensions -----------------------------------------------------------
def _own_app(req: GraphRequest, app_id: str) -> None:
    t = req.tenant
    if app_id.lower().startswith("appid="):  # applications(appId='...'): the client id
        if app_id.split("=", 1)[1].strip("'\"").lower() == t.client_id.lower():
            return
        raise GraphError(404, "Request_ResourceNotFound", f"Resource '{app_id}' does not exist or one of its "
                         "queried reference-property objects are not present.")
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
    targets = body.get("targetObjects")
    # resources/extensionproperty.md: targetObjects is required ("Not nullable") and takes User, Group,
    # AdministrativeUnit, Application, Device, Organization.
    if not isinstance(targets, list) or not targets or not all(
            isinstance(x, str) and x in validation.EXTENSION_TARGETS for x in targets):
        raise GraphError(400, "Request_BadRequest", f"Invalid value specified for property 'targetObjects': "
                         f"{targets!r}; use a non-empty list of {', '.join(sorted(validation.EXTENSION_TARGETS))}.")
    if "isMultiValued" in body and not isinstance(body["isMultiValued"], bool):
        raise GraphError(400, "Request_BadRequest", "Invalid value specified for property 'isMultiValued'.")
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

