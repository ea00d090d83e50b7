"""GET /users/delta: rounds, $deltatoken and $skiptoken, manager@delta and syncStateNotFound
(api/user-delta.md, concepts/delta-query-overview.md)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import orjson

from ..odata import parse_select
from ..store import ACTIVE, DEFAULT_USER_PROPS, DELETED
from ..wire import DELTA_PAGE, DELTA_TOKEN_TTL_S, GraphError, GraphRequest, GraphResponse
from .common import _assemble, _context, user_props

if TYPE_CHECKING:
    from ..app import SandboxApp
    from ..store import Tenant


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
        if not _DELTA_ID_FILTER.fullmatch(text):
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
