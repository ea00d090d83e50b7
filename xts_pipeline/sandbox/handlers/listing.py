"""Paged listings over rows ordered by id: $top, $skiptoken, $filter, $select, $count, and on users
$orderby, $search and $expand=manager (concepts/paging.md, concepts/aad-advanced-queries.md)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import orjson

from ..odata import parse_filter, parse_select
from ..store import DEFAULT_USER_PROPS
from ..wire import GraphError, GraphRequest, GraphResponse, _project
from .common import _USER_TYPE, _assemble, _context, _eventual, _parse_top

if TYPE_CHECKING:
    from ..app import SandboxApp
    from ..store import Tenant


_SCAN_CHUNK = 2000


# Values whose JSON text equals the raw text and whose case folding is ASCII-only.
_SAFE_NEEDLE = re.compile(r"^[ !#-\[\]-~]{3,}$")


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
        m = _SEARCH_RE.fullmatch(part.strip())
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
        from ..odata import ODataQuery
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
        if filt is not None and fetch_text is not None and filt.lookup and _SAFE_NEEDLE.fullmatch(filt.lookup[1]):
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
