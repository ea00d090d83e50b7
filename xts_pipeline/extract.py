"""Extraction from Graph into DuckDB: source users by delta query, and the target snapshot.

Source pages stream: a background thread reads the next pages while each one is folded and spooled to a
private Parquet file (no DuckDB connection held on the network, no tenant held as a list of dicts); the
round is then applied in one set-based transaction. Target pages are written as Arrow tables, one short
connection each.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson
import pyarrow as pa

from xts_pipeline import queries, store
from xts_pipeline.vocabulary import LINK_EXTENSIONS, link_names

# What the sync reads from a source user. Mappings and scoping may add attributes (extra_select).
SOURCE_SELECT = (
    "id", "userPrincipalName", "mail", "mailNickname", "displayName", "givenName", "surname", "jobTitle",
    "department", "companyName", "officeLocation", "employeeId", "employeeType", "city", "country", "state",
    "streetAddress", "postalCode", "usageLocation", "preferredLanguage", "mobilePhone", "businessPhones",
    "accountEnabled", "userType", "creationType", "externalUserState", "showInAddressList", "otherMails",
)
TARGET_SELECT = (
    "id", "userPrincipalName", "mail", "mailNickname", "displayName", "givenName", "surname", "jobTitle",
    "department", "companyName", "officeLocation", "employeeId", "employeeType", "city", "country", "state",
    "streetAddress", "postalCode", "usageLocation", "preferredLanguage", "mobilePhone", "businessPhones",
    "accountEnabled", "userType", "creationType", "externalUserState", "showInAddressList", "otherMails",
    "identities",  # how an external user redeemed: the planner adopts only users redeemed through Entra
)
# Each user's manager rides on the same pages: plain $expand=manager on the users list (+1 RU a page), and
# `manager` in $select on users/delta, which answers with `manager@delta` annotations
# (concepts/delta-query-overview.md: "$expand isn't supported ... $select also supports manager").
MANAGER_EXPAND = "manager"
MANAGER_SELECT = "manager"
GROUP_SELECT = ("id", "displayName", "groupTypes", "membershipRule", "membershipRuleProcessingState",
                "isAssignableToRole")


class DeltaRoundLike(Protocol):
    delta_link: str | None
    resynced: bool

    def __iter__(self) -> Iterator[list[dict]]: ...


def rebase_link(link: str | None, graph_url: str | None) -> str | None:
    """A stored delta link on the tenant's current Graph endpoint, or None (full resync) when it can't be.

    The delta token lives in the query; the host can change (a sandbox restarted on another port, a
    proxy): the client rightly refuses to send a token to any host but graph_url.
    """
    if not link or not graph_url or link.startswith(graph_url.rstrip("/") + "/"):
        return link
    from urllib.parse import urlsplit, urlunsplit

    old, new = urlsplit(link), urlsplit(graph_url)
    if not old.path.startswith(new.path.rstrip("/") + "/"):
        return None
    return urlunsplit((new.scheme, new.netloc, old.path, old.query, ""))


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


@dataclass
class ExtractResult:
    """What one extraction round did."""

    tenant: str
    mode: str  # "full" | "incremental" | "resync"
    pages: int = 0
    upserted: int = 0
    removed: int = 0
    dropped_unseen: int = 0
    total: int = 0


def _manager_from_annotation(refs: object) -> dict | None:
    """`manager@delta` -> {"id": ...}, or None when the annotation removes the manager."""
    live = [r for r in (refs or []) if isinstance(r, dict) and r.get("id") and "@removed" not in r] \
        if isinstance(refs, list) else []
    return {"id": live[-1]["id"]} if live else None


def fold_page(page: list[dict]) -> tuple[dict[str, dict], dict[str, bool]]:
    """One delta page in order: per user, the merged patch of its items, and whether it was removed first.

    api/user-delta.md: "Updated instances are represented by their id with at least the updated
    properties" (a partial item, merged onto what we hold: a missing property or annotation means
    unchanged) and "A single entity can be contained multiple times in the response" (later copies are
    newer and win). A removal followed by a re-addition in the same page ends as the re-added user.
    Returns (upserts: id -> patch, removed: id -> True for users whose last item removes them).
    """
    upserts: dict[str, dict] = {}
    removed: dict[str, bool] = {}
    for item in page:
        uid = item.get("id")
        if not uid:
            continue
        if "@removed" in item:
            upserts.pop(uid, None)
            removed[uid] = True
            continue
        removed.pop(uid, None)
        patch = {k: v for k, v in item.items() if not k.endswith("@delta") and not k.startswith("@odata.")}
        if "manager@delta" in item:
            patch["manager"] = _manager_from_annotation(item["manager@delta"])
        elif "manager" in item and isinstance(item["manager"], dict):
            patch["manager"] = {"id": item["manager"].get("id")}
        upserts.setdefault(uid, {}).update(patch)
    return upserts, removed


# The round's events, spooled to a private Parquet file beside the database while pages arrive (no DuckDB
# connection held on the network, and no tenant held in memory), then applied in one set-based transaction.
_SPOOL_SCHEMA = pa.schema([("seq", pa.int64()), ("id", pa.string()), ("data", pa.string()),
                           ("removed", pa.bool_()), ("merge", pa.bool_())])

# The round's new rows: see the file's header for how each user's events are applied.
_ROUND_ROWS = queries.render("extract/round_rows")  # its body: its header of comments stays out
_ROUND_INTO_TEMP = queries.render("extract/round_into_temp", round_rows=_ROUND_ROWS)
_ROUND_UPSERT = queries.render("extract/round_upsert", round_rows=_ROUND_ROWS)


class _Spool:
    """Folded delta pages as rows of a Parquet file (mode 0600: it holds user data), deleted afterwards."""

    def __init__(self, db: str | Path | None) -> None:
        import tempfile

        import pyarrow.parquet as pq

        where = (Path(db).absolute() if db else store.default_path()).parent
        where.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".xts-delta-", suffix=".parquet", dir=where)
        os.close(fd)
        self.path = Path(name)
        self._writer = pq.ParquetWriter(self.path, _SPOOL_SCHEMA, compression="lz4")
        self.seq = 0
        self.upserted = 0
        self.removed = 0

    def add(self, page: list[dict], merge: bool) -> None:
        upserts, removed = fold_page(page)
        ids = [*removed, *upserts]
        n = len(ids)
        if not n:
            return
        data = [None] * len(removed) + [_dumps(v) for v in upserts.values()]
        flags = [True] * len(removed) + [False] * len(upserts)
        self._writer.write_table(pa.table({
            "seq": pa.array(range(self.seq, self.seq + n), pa.int64()), "id": ids, "data": data,
            "removed": flags, "merge": [merge] * n}, schema=_SPOOL_SCHEMA))
        self.seq += n
        self.upserted += len(upserts)
        self.removed += len(removed)

    def close(self) -> None:
        self._writer.close()

    def discard(self) -> None:
        with suppress(Exception):
            self._writer.close()
        self.path.unlink(missing_ok=True)


# A round that replaces at most this fraction of a tenant's stored rows replaces them by delete + insert.
DELETE_INSERT_UP_TO = 0.25


def _apply_spool(con, spool: _Spool, tenant: str, cycle_id: str) -> None:
    """The spooled round into raw_users: deletions, then every user's merged patch in place of its row.

    A small round (an incremental one) replaces its rows by delete + insert, not ON CONFLICT DO UPDATE:
    DuckDB rewrites the whole row group of an updated row at the next checkpoint (100 changed users of
    100,000 cost a 60 MB rewrite, ~0.8 s, when the connection closed), while deleted and appended rows are
    written as they are. A round over most of the tenant (a full read, a resync) updates in place, which is
    then the cheaper of the two. Both leave the same rows.
    """
    if not spool.seq:
        return
    params = {"spool": str(spool.path), "tenant": tenant}
    con.execute(queries.load("extract/delete_removed"), params)
    stored = store.count(con, "raw_users", "tenant", tenant)
    if spool.upserted <= DELETE_INSERT_UP_TO * stored:  # spool.upserted: at least the round's distinct users
        con.execute(_ROUND_INTO_TEMP, {**params, "cycle": cycle_id})
        con.execute(queries.load("extract/delete_replaced"), {"tenant": tenant})
        con.execute(queries.load("extract/insert_round"))
        con.execute(queries.load("extract/drop_round"))
        return
    con.execute(_ROUND_UPSERT, {**params, "cycle": cycle_id})


def _prefetched(pages: Iterable[list[dict]], flag: Callable[[], bool], depth: int = 4) -> Iterator[tuple[list[dict], bool]]:
    """(page, flag() as it was when the page arrived), read by a background thread `depth` pages ahead.

    The next pages travel while this one is folded and spooled: the socket wait releases the GIL.
    """
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(item: tuple) -> bool:
        """Hand one item over unless the consumer has stopped (then nobody reads a full queue again)."""
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for page in pages:
                if not put((page, flag())):
                    return
            put((done, None))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            put((exc, None))

    thread = threading.Thread(target=produce, name="xts-delta-pages", daemon=True)
    thread.start()
    try:
        while True:
            page, value = q.get()
            if page is done:
                return
            if isinstance(page, BaseException):
                raise page
            yield page, value
    finally:
        stop.set()
        thread.join()


def extract_source_users(db: str | Path | None, tenant: str, client: Any, cycle_id: str,
                         extra_select: Iterable[str] = ()) -> ExtractResult:
    """One delta round for `tenant` into `raw_users`; the delta link is kept in `delta_cursors`.

    No cursor -> full read. An expired cursor is resynced by the client (`resynced`); after any full
    read, rows not seen in it are dropped, since they no longer exist in the source. The round is
    spooled while it streams and written in one transaction at its end: a round that fails midway
    changes nothing (its delta link was not stored either, so the next cycle repeats it).
    """
    with store.connect(db) as con:
        row = con.execute(queries.load("extract/cursor_link"), [tenant]).fetchone()
    link = rebase_link(row[0] if row else None, getattr(getattr(client, "conn", None), "graph_url", None))
    select = list(dict.fromkeys([*SOURCE_SELECT, *extra_select]))
    select = list(dict.fromkeys([*select, MANAGER_SELECT]))
    rnd = client.delta_users(select=select, delta_link=link)
    result = ExtractResult(tenant=tenant, mode="incremental" if link else "full")
    spool = _Spool(db)
    try:
        for page, merge in _prefetched(rnd, lambda: bool(link) and not rnd.resynced):
            spool.add(page, merge)
            result.pages += 1
        spool.close()
        result.upserted, result.removed = spool.upserted, spool.removed
        if rnd.resynced:
            result.mode = "resync"
        with store.connect(db) as con:
            con.execute("BEGIN")
            _apply_spool(con, spool, tenant, cycle_id)
            if result.mode != "incremental":
                # DuckDB answers a DELETE with the number of rows it deleted
                result.dropped_unseen = con.execute(queries.load("extract/drop_unseen"),
                                                    [tenant, cycle_id]).fetchone()[0]
            con.execute(queries.load("extract/save_cursor"),
                        {"tenant": tenant, "delta_link": rnd.delta_link, "full": result.mode != "incremental"})
            result.total = store.count(con, "raw_users", "tenant", tenant)
            con.execute("COMMIT")
    finally:
        spool.discard()
    return result


@dataclass
class SnapshotResult:
    """What the target snapshot holds after a read."""

    tenant: str
    users: int = 0
    linked: int = 0
    guests: int = 0
    groups: int = 0
    dynamic_groups: int = 0
    policies: dict[str, bool | None] = field(default_factory=dict)
    role_holders: int = 0
    warnings: list[str] = field(default_factory=list)


def verified_domains_found(client: Any) -> dict[str, bool]:
    """The tenant's verified domains, lower-case, and whether each is the default one; read-only."""
    return {d["name"].lower(): bool(d.get("isDefault")) for d in client.verified_domains()}


def read_verified_domains(db: str | Path | None, tenant: str, client: Any) -> list[str]:
    """Store the tenant's verified domains (lower-case) and return them; replaces the previous read."""
    found = verified_domains_found(client)
    names = sorted(found)
    with store.connect(db) as con:
        con.execute("BEGIN")
        clear, insert = queries.statements("extract/domains_replace")
        con.execute(clear, [tenant])
        con.executemany(insert, [[tenant, n, found[n]] for n in names])
        con.execute("COMMIT")
    return names


ROLES_PERMISSION = "RoleManagement.Read.Directory"


def read_role_holders(tenant: str, client: Any) -> tuple[list[tuple[str, str, str]], str | None]:
    """(role id, role name, member id) of every activated directory role, or a warning instead.

    Role holders are protected identities for the impersonation guardrail. Reading them needs the
    optional permission RoleManagement.Read.Directory: without it (403) the snapshot goes on and says so,
    because the rest of the sync does not depend on it.
    """
    from xts_pipeline.graph.errors import PermissionError_

    rows: list[tuple[str, str, str]] = []
    try:
        roles = [r for page in client.iter_directory_roles() for r in page if r.get("id")]
        for role in roles:
            name = role.get("displayName") or role["id"]
            for page in client.iter_role_members(role["id"]):
                # Roles are also held by groups and service principals (api/directoryrole-list-members.md);
                # the impersonation guardrail protects people, so only users are kept here.
                rows.extend((role["id"], name, m["id"]) for m in page if m.get("id")
                            and m.get("@odata.type", "#microsoft.graph.user") == "#microsoft.graph.user")
    except PermissionError_ as exc:
        return [], (f"target {tenant}: directory role holders were not read, so they are not protected from "
                    f"impersonation: the app lacks {ROLES_PERMISSION} ({exc.code or 'HTTP 403'}). Grant the "
                    f"application permission {ROLES_PERMISSION} with admin consent, or list the people to "
                    f"protect under inbound_policies.{tenant}.impersonation.protected")
    return rows, None


def _target_row(tenant: str, u: dict, names: dict[str, str]) -> dict:
    if isinstance(u.get("manager"), dict):  # plain $expand brings the whole manager: the planner needs its id
        u = {**u, "manager": {"id": u["manager"].get("id")}}
    return {
        "tenant": tenant, "id": u.get("id"), "user_principal_name": u.get("userPrincipalName"),
        "mail": u.get("mail"), "display_name": u.get("displayName"), "user_type": u.get("userType"),
        "creation_type": u.get("creationType"), "external_user_state": u.get("externalUserState"),
        "account_enabled": u.get("accountEnabled"),
        "link_source_tenant_id": u.get(names["xtsSourceTenantId"]),
        "link_source_object_id": u.get(names["xtsSourceObjectId"]),
        "link_sync_config": u.get(names["xtsSyncConfig"]),
        "attrs": _dumps(u),  # carries "manager": {"id": ...} from $expand and extension targets: the planner reads them
    }


_TARGET_COLS = ("tenant", "id", "user_principal_name", "mail", "display_name", "user_type", "creation_type",
                "external_user_state", "account_enabled", "link_source_tenant_id", "link_source_object_id",
                "link_sync_config", "attrs")
_TARGET_TYPES = {"account_enabled": pa.bool_()}


def _rows_table(rows: list[dict], cols: tuple[str, ...]) -> pa.Table:
    return pa.table({c: pa.array([r[c] for r in rows], type=_TARGET_TYPES.get(c, pa.string())) for c in cols})


@dataclass
class TargetDirectory:
    """What a target snapshot reads besides its users: groups, role-assignable groups' members, directory role
    holders, partner policies, and what could not be read (notes)."""

    groups: list[dict] = field(default_factory=list)
    members: list[tuple[str, str]] = field(default_factory=list)
    role_rows: list[tuple[str, str, str]] = field(default_factory=list)
    policies: list[tuple[str, str, bool | None, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def read_target_directory(tenant: str, client: Any, partners: Iterable[tuple[str, str]]) -> TargetDirectory:
    """The target's groups (with dynamic rules), role-assignable groups' members, role holders and the partner
    policies of `partners` ((source name, source tenant id)); read-only."""
    out = TargetDirectory()
    for page in client.iter_groups(select=list(GROUP_SELECT)):
        out.groups.extend(page)  # groups are few compared with users
    for g in out.groups:
        if g.get("isAssignableToRole"):
            for page in client.iter_group_members(g["id"]):
                out.members.extend((g["id"], m["id"]) for m in page if m.get("id"))
    out.role_rows, role_warning = read_role_holders(tenant, client)
    if role_warning:
        out.warnings.append(role_warning)
    for source_name, source_tid in partners:
        pol = client.partner_sync_policy(source_tid)
        allowed = None if pol is None else bool((pol.get("userSyncInbound") or {}).get("isSyncAllowed"))
        out.policies.append((source_name, source_tid, allowed, _dumps(pol)))
    return out


def load_target_page(con: Any, tenant: str, users: list[dict], names: dict[str, str]) -> None:
    """One page of Graph users into target_users_load, as target_users rows."""
    table = _rows_table([_target_row(tenant, u, names) for u in users], _TARGET_COLS)
    con.register("page_tbl", table)
    con.execute(queries.load("extract/snapshot_load_page"))
    con.unregister("page_tbl")


def keep_target_users(con: Any, tenant: str, ids: list[str]) -> None:
    """The snapshot's users but `ids` into target_users_load (the change probe then loads their new rows)."""
    con.execute(queries.load("extract/snapshot_keep_users"), [tenant, ids])


def publish_target(con: Any, tenant: str, names: dict[str, str], found: TargetDirectory) -> tuple[int, int, int]:
    """The loaded users and `found` replace the target's snapshot tables (inside the caller's transaction):
    (users, linked users, guests). The change probe runs the same statements over temporary copies."""
    for statement in queries.statements("extract/snapshot_publish"):
        con.execute(statement, [tenant])
    con.executemany(queries.load("extract/snapshot_extension"), [[tenant, k, v] for k, v in names.items()])
    con.executemany(
        queries.load("extract/snapshot_group"),
        [[tenant, g["id"], g.get("displayName"), _dumps(g.get("groupTypes") or []), g.get("membershipRule"),
          g.get("membershipRuleProcessingState"), bool(g.get("isAssignableToRole")), _dumps(g)]
         for g in found.groups],
    )
    if found.members:
        con.executemany(queries.load("extract/snapshot_group_member"), [[tenant, g, m] for g, m in found.members])
    if found.role_rows:
        con.executemany(queries.load("extract/snapshot_role_member"), [[tenant, *r] for r in found.role_rows])
    if found.warnings:
        con.executemany(queries.load("extract/snapshot_note"), [[tenant, w] for w in found.warnings])
    if found.policies:
        con.executemany(queries.load("extract/snapshot_policy"), [[tenant, *p] for p in found.policies])
    return con.execute(queries.load("extract/snapshot_counts"), [tenant]).fetchone()


def snapshot_target(db: str | Path | None, tenant: str, client: Any, app_client_id: str,
                    partners: Iterable[tuple[str, str]], extra_select: Iterable[str] = (),
                    app_object_id: str | None = None) -> SnapshotResult:
    """Read the target's users, groups (with dynamic rules), directory role holders and partner policies.

    `partners` are (source tenant name, source tenant id) of every pair into this target. The new
    snapshot replaces the old one in one transaction, so readers never see half a tenant.
    With `app_object_id`, the three link extensions are registered on the target's app first (once,
    idempotent: schema setup, not a user write); Graph refuses to $select an unregistered extension.
    Before the users are read, a users delta link from now on is taken with the same $select and kept with
    the snapshot (target_cursors): the change probe (xts_pipeline/probe.py) reads from it what changed since.
    """
    if app_object_id:
        names = {**link_names(app_client_id), **client.ensure_extensions(app_object_id, list(LINK_EXTENSIONS))}
    else:
        names = link_names(app_client_id)
    res = SnapshotResult(tenant=tenant)
    with store.connect(db) as con:
        con.execute(queries.load("extract/snapshot_clear_load"), [tenant])
    extra = list(extra_select)
    wanted_ext = [e for e in extra if e.startswith("extension_")]
    if wanted_ext:
        # Directory extensions mapped as targets are read back so the planner diffs their current values.
        # Graph refuses to $select one that is not registered: those have no value yet to read.
        registered = client.registered_extensions(app_object_id) if app_object_id else set()
        missing = sorted(set(wanted_ext) - registered)
        if missing:
            res.warnings.append(f"target {tenant}: mapped directory extension(s) {', '.join(missing)} are not "
                                "registered on the target's app yet, so their current values are not read")
        extra = [e for e in extra if not e.startswith("extension_") or e in registered]
    select = list(dict.fromkeys([*TARGET_SELECT, *(names.values() if app_object_id else ()), *extra]))
    link = client.latest_users_delta_link(select)
    for page in client.iter_users(select=select, expand=MANAGER_EXPAND):
        with store.connect(db) as con:
            load_target_page(con, tenant, page, names)
    found = read_target_directory(tenant, client, partners)
    found.warnings[:0] = res.warnings
    with store.connect(db) as con:
        con.execute("BEGIN")
        res.users, res.linked, res.guests = publish_target(con, tenant, names, found)
        con.execute(queries.load("extract/target_cursor_save"), [tenant, link])
        con.execute("COMMIT")
    res.warnings = found.warnings
    res.groups = len(found.groups)
    res.role_holders = len({r[2] for r in found.role_rows})
    res.dynamic_groups = sum(1 for g in found.groups if "DynamicMembership" in (g.get("groupTypes") or []))
    res.policies = {p[0]: p[2] for p in found.policies}
    return res


def read_source_groups(tenant: str, client: Any, refs: Iterable[str]) -> tuple[list[str], list[list[str]]]:
    """(references found, [tenant, reference, group id, member id] rows) of the groups a pair assigns; read-only.

    Nested groups are not expanded, as in Entra. An unknown reference raises, naming the tenant and the
    group so the config can be fixed.
    """
    wanted = sorted(set(refs))
    found: dict[str, str] = {}
    if wanted:
        for page in client.iter_groups(select=["id", "displayName"]):
            for g in page:
                for ref in wanted:
                    if ref in (g.get("id"), g.get("displayName")):
                        found[ref] = g["id"]
    missing = [r for r in wanted if r not in found]
    if missing:
        raise LookupError(
            f"tenant {tenant}: assigned group(s) {', '.join(repr(m) for m in missing)} not found in the source; "
            f"fix scope.groups in the config (object id or exact displayName)"
        )
    rows: list[list[str]] = []
    for ref, gid in found.items():
        for page in client.iter_group_members(gid):
            rows.extend([tenant, ref, gid, m["id"]] for m in page if m.get("id"))
    return list(found), rows


def extract_source_groups(db: str | Path | None, tenant: str, client: Any, refs: Iterable[str]) -> dict[str, int]:
    """Direct members of the groups a pair assigns (by object id or display name) into source_group_members.

    Returns members per reference (read_source_groups says how they are read).
    """
    found, rows = read_source_groups(tenant, client, refs)
    with store.connect(db) as con:
        con.execute("BEGIN")
        con.execute(queries.load("extract/source_groups_clear"), [tenant])
        if rows:
            con.executemany(queries.load("extract/source_group_member"), rows)
        con.execute("COMMIT")
    return {ref: sum(1 for r in rows if r[1] == ref) for ref in found}
