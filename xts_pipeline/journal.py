"""The write journal: what makes apply safe to kill (pending and confirmed writes, and the links they make).

Each write op is recorded `in_flight` in `write_journal` (committed) before the writer sends anything,
and `done` or `failed` with its outcome. If the process dies, the next apply finds the entries still in
flight and looks the target up (by the link extension, then by the invited mail) before retrying, so a
create whose response was lost is adopted, not repeated. A link is `pending` until the write that puts
the link extensions on the target user is confirmed, `active` after. This module is the only writer of
`write_journal` and of `links`: apply records links, what a write applied and the manager pass's managers
through the functions here, and the planner keeps the links in step with the target's snapshot through
`reconcile_links`. The queries are `sql/journal/*.sql`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from xts_pipeline import queries, store
from xts_pipeline.provisioning_log import LogEntry
from xts_pipeline.provisioning_log import write as write_log

if TYPE_CHECKING:
    from xts_pipeline.apply import ApplyContext, ApplyResult


def in_flight(con, pair_key: str) -> list[dict]:
    """The pair's writes a killed run left in flight (sent, or about to be, with no recorded outcome)."""
    cur = con.execute(queries.load("journal/in_flight"), {"pair_key": pair_key})
    cols = [c[0] for c in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def finish(con, pair_key: str, change_id: str, succeeded: bool, target_user_id: str | None) -> None:
    """Record a write's outcome, in the transaction that logs it: it is no longer in flight."""
    con.execute(queries.load("journal/finish"), {"state": "done" if succeeded else "failed",
                                                 "target_user_id": target_user_id, "pair_key": pair_key,
                                                 "change_id": change_id})


# Create patches may not carry these: the invitation sets them, or Graph refuses them on a guest PATCH.
NOT_PATCHED_ON_CREATE = ("mail",)
# How the log words a create whose invitation landed and whose attributes and link have not yet.
PENDING_REASON = "invited, link pending"


def lookup_filter(ext_oid: str, source_object_id: str) -> str:
    """OData filter that finds the target user linked to a source user (value escaped by graph.odata)."""
    from xts_pipeline.graph import odata

    return str(odata.eq(ext_oid, source_object_id))


def _completion(row: dict, tid: str, reason: str) -> None:
    """Turn a planned create into the write that completes it: the attributes and the link, on `tid`.

    Logged as its own create entry (log_op), so the create is counted once: when its link lands.
    """
    row["action"], row["target_user_id"], row["match"], row["log_op"] = "update", tid, "reconciled", "create"
    row["changes"] = [{"property": k, "old": None, "new": v} for k, v in sorted(row["desired"].items())
                      if v is not None and k not in NOT_PATCHED_ON_CREATE]
    row["reason"] = reason


def reconcile(db, ctx: ApplyContext, client: Any, inflight: list[dict], rows: list[dict],
               cycle_id: str, result: ApplyResult) -> list[str]:
    """Resolve writes a killed run left in flight: find what reached the target, fix the plan to match.

    A create found by its link extension had completed (its one PATCH carries attributes and link): it is
    logged Success and not sent again. One found only by the invited mail got its invitation but not its
    PATCH: logged Create Warning "invited, link pending", recorded as a `pending` link (never `active`
    before the link is on the target), and completed by a separate entry. Planned creates of users the
    store already knows (a pending link from an earlier interrupted run) are completed the same way.
    Returns the change ids that need no write any more.
    """
    from xts_pipeline.graph import odata

    by_sid = {r["source_object_id"]: r for r in rows if r.get("source_object_id")}
    entries: list[LogEntry] = []
    found: list[tuple[str, str, str]] = []  # (sid, tid, link state)
    finished: list[str] = []
    for j in inflight:
        if j["op_kind"] not in ("create", "restore"):
            continue  # PATCH, DELETE and manager refs are idempotent: the plan or the manager pass re-sends them
        sid = j["source_object_id"]
        hits = client.find_users(j["lookup_filter"], select=("id", "mail")) if j["lookup_filter"] else []
        by_link = bool(hits)
        if not hits and j["op_kind"] == "create" and j.get("mail"):
            hits = [h for h in client.find_users(odata.eq("mail", j["mail"]),
                                                 select=("id", "mail", "userType", "creationType"))
                    if h.get("creationType") == "Invitation" or h.get("userType") == "Guest"]
        row = by_sid.get(sid)
        base = {"cycle_id": cycle_id, "change_id": j["change_id"], "pair_key": ctx.pair.key,
                "operation": j["op_kind"], "source_object_id": sid, "target_tenant": ctx.pair.target,
                "source_tenant_id": ctx.pair.source_tenant_id,
                "source_upn": row.get("user_principal_name") if row else None}
        if len(hits) > 1:
            entries.append(LogEntry(**base, status="warning", reason=(
                f"interrupted run: {len(hits)} target users match ({', '.join(h['id'] for h in hits)}); "
                f"left for an admin to merge, nothing written")))
            if row is not None and row["action"] in ("create", "restore"):
                finished.append(row["change_id"])
            continue
        if not hits:
            entries.append(LogEntry(**base, status="warning",
                                    reason="interrupted run: the write never reached the target; retried if "
                                           "still planned"))
            continue
        tid = hits[0]["id"]
        if by_link and j["op_kind"] == "create":
            found.append((sid, tid, "active"))
            entries.append(LogEntry(**base, status="success", target_user_id=tid,
                                    reason="reconciled after an interrupted run: the create had completed "
                                           "(link on the target)"))
            if row is not None and row["action"] == "create":
                finished.append(row["change_id"])
            continue
        found.append((sid, tid, "pending" if j["op_kind"] == "create" else "active"))
        if j["op_kind"] == "create":
            entries.append(LogEntry(**base, status="warning", target_user_id=tid, reason=(
                f"{PENDING_REASON}: an interrupted run's invitation reached the target (user {tid}); its "
                f"attributes and link are written as a separate entry")))
        else:
            entries.append(LogEntry(**base, status="success", target_user_id=tid,
                                    reason="reconciled after an interrupted run: the restore had reached the "
                                           "target; its attributes are written as a separate entry"))
        if row is not None and row["action"] in ("create", "restore"):
            if row["action"] == "create":
                _completion(row, tid, f"completes the create of an interrupted run: attributes and link "
                                      f"written to invited user {tid}")
            else:
                row["action"], row["target_user_id"], row["match"] = "update", tid, "reconciled"
                row["log_op"] = "restore"
                row["changes"] = [{"property": k, "old": None, "new": v} for k, v in sorted(row["desired"].items())]
    result.reconciled = len(found)
    with store.connect(db) as con:
        con.execute("BEGIN")
        for sid, tid, state in found:
            record_link(con, ctx, sid, tid, state)
        if inflight:
            con.execute(queries.load("journal/reconciled"), {"pair_key": ctx.pair.key})
        write_log(con, entries)
        # Creates of users the store already knows (pending or active link, target user present): complete them.
        creates = [r["source_object_id"] for r in rows if r["action"] == "create" and r.get("source_object_id")]
        # (the target user is in the snapshot, or the link is newer than the snapshot: a user an admin deleted
        # in the target since is provisioned again instead)
        known = dict(con.execute(queries.load("journal/known_links"), {
            "pair_key": ctx.pair.key, "sids": creates, "target": ctx.pair.target}).fetchall()) if creates else {}
        con.execute("COMMIT")
    for r in rows:
        if r["action"] == "create" and known.get(r["source_object_id"]):
            _completion(r, known[r["source_object_id"]], f"completes the create: attributes and link written to "
                                                         f"invited user {known[r['source_object_id']]}")
    return finished


def record_link(con, ctx: ApplyContext, sid: str | None, tid: str | None, state: str) -> None:
    """Record what the store knows: `active` only once the link is on the target, `pending` before."""
    if not sid or not tid:
        return
    con.execute(queries.load("journal/record_link"), {
        "pair_key": ctx.pair.key, "source_tenant_id": ctx.pair.source_tenant_id, "source_object_id": sid,
        "target_tenant": ctx.pair.target, "target_user_id": tid, "state": state})


def record_applied(con, pair_key: str, source_object_id: str, values: dict[str, Any]) -> None:
    """Merge what a successful write set into the link's `applied` record (apply.applied_values decides what)."""
    con.execute(queries.load("journal/record_applied"), {
        "applied": orjson.dumps(values).decode(), "pair_key": pair_key, "source_object_id": source_object_id})


def record_manager(con, pair_key: str, source_object_id: str | None, manager: str | None) -> None:
    """The manager the pair last wrote to a linked user (links.applied.manager), None when it was removed."""
    con.execute(queries.load("journal/record_manager"),
                {"manager": manager, "pair_key": pair_key, "source_object_id": source_object_id})


def writes_link(row: dict) -> bool:
    """Whether a successful write of this row put the link extensions on the target user."""
    if row["action"] in ("create", "restore", "adopt") or row.get("match") in ("adopt", "reconciled"):
        return True
    return any(str(c.get("property", "")).endswith("xtsSourceObjectId") for c in row.get("changes") or [])


def record_in_flight(db, ctx: ApplyContext, cycle_id: str, rows: list[dict], ops: list[Any]) -> None:
    """Journal the ops as in flight, committed before the writer sends the first of them."""
    if not ops:
        return  # e.g. a plan whose only changes are managers: they are journaled in the manager pass
    by_id = {r["change_id"]: r for r in rows}
    with store.connect(db) as con:
        con.executemany(queries.load("journal/record_in_flight"), [{
            "pair_key": ctx.pair.key, "cycle_id": cycle_id, "change_id": op.op_id, "op_kind": op.kind,
            "source_object_id": by_id[op.op_id].get("source_object_id"), "target_user_id": op.user_id,
            "mail": by_id[op.op_id].get("mail"), "lookup_filter": op.lookup_filter} for op in ops])


def new_users(db, ctx: ApplyContext, cycle_id: str) -> list[str]:
    """Source users this cycle linked or invited, by the journal: a rerun of a killed apply replays their
    manager pass from here (their creates are done, so the plan no longer shows them as new)."""
    with store.connect(db) as con:
        rows = con.execute(queries.load("journal/new_users"),
                           {"pair_key": ctx.pair.key, "cycle_id": cycle_id}).fetchall()
    return [r[0] for r in rows]


def reconcile_links(con: Any, pair_key: str, target: str, source_tenant_id: str) -> None:
    """Before a plan: the links the target's snapshot shows, as the planner must read them.

    - a link the target carries is a link we know (a rebuilt DuckDB file relearns it);
    - a link is active only while it is on the target: one the snapshot shows missing (read after the link
      was recorded) is pending again, so the plan writes it back (link repair).
    """
    con.execute(queries.load("journal/relearn_links"),
                {"pair": pair_key, "target": target, "source_tid": source_tenant_id})
    con.execute(queries.load("journal/links_pending"), {"pair": pair_key, "target": target})


def seed_applied(con: Any, pair_key: str, target: str) -> None:
    """The recovery rule for a linked user with no last-applied record: see sql/journal/seed_applied.sql."""
    con.execute(queries.load("journal/seed_applied"), {"pair": pair_key, "target": target})
