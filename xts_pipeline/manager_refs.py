"""The manager pass: Entra's referenceResolution, run after every create and update of an apply had its outcome.

A manager is a reference to another B2B user, so it can be written only once that user exists in the
target; this pass decides which manager references to write (the plan's manager changes, and the
managers of users this cycle brought into the target), in one SQL pass over the links.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xts_pipeline import journal, queries, store

if TYPE_CHECKING:
    from xts_pipeline.apply import ApplyContext


MANAGER_SQL = queries.load("manager_refs/managers")


def _manager_row(row: dict, change: dict, reason: str) -> dict:
    # Logged as operation "manager", Entra action Update with the modified property manager.
    return {**row, "change_id": row["change_id"] + ":manager", "action": "manager", "match": "manager",
            "changes": [change], "desired": {}, "reason": reason, "log_op": None}


def record_manager(con, ctx: ApplyContext, row: dict) -> None:
    """The manager this pair last wrote (links.applied.manager): the planner compares the source with it."""
    new = next((c["new"] for c in row.get("changes") or [] if c.get("property") == "manager"), None)
    journal.record_manager(con, ctx.pair.key, row.get("source_object_id"), new)


def manager_refs(db, ctx: ApplyContext, cycle_id: str, unsent: list[dict], done: list[dict]) -> list[dict]:
    """Manager writes (Entra's referenceResolution), after every create and update of this apply had its outcome.

    A manager is a reference to another B2B user, so it can only be written once that user exists: the
    plan's manager changes whose other writes succeeded (or had nothing else to write), plus every user
    this cycle brought into the target (created, adopted, restored, completed after a crash; by this
    apply and, for a rerun of a killed one, by the journal) and the linked reports of such managers,
    resolved in one SQL pass over the links. A held or failed user gets no manager write here; the
    planner re-plans it in the next ordinary cycle until the manager holds (links.applied.manager).
    """
    def has_mgr(r: dict) -> bool:
        return any(c.get("property") == "manager" for c in r.get("changes") or [])

    planned = [r for r in (*unsent, *(d for d in done if d.get("match") != "manager")) if has_mgr(r)
               and r["action"] in ("update", "disable", "adopt") and r.get("match") != "reconciled"]
    out = [_manager_row(r, next(c for c in r["changes"] if c["property"] == "manager"),
                        "referenceResolution: the source manager changed") for r in planned]
    created = sorted({d["source_object_id"] for d in done if d.get("source_object_id") and journal.writes_link(d)}
                     | set(journal.new_users(db, ctx, cycle_id)))
    if not created:
        return out
    skip = [r["source_object_id"] for r in out]
    with store.connect(db) as con:
        rows = con.execute(MANAGER_SQL, {"pair": ctx.pair.key, "source": ctx.pair.source, "target": ctx.pair.target,
                                         "created": created, "skip": skip}).fetchall()
    for sid, tid, mtid, cur, upn, msid in rows:
        base = {"change_id": f"{cycle_id}:{sid}", "source_tenant_id": ctx.pair.source_tenant_id,
                "source_object_id": sid, "target_user_id": tid, "mail": None, "user_principal_name": upn}
        out.append(_manager_row(base, {"property": "manager", "old": cur, "new": mtid},
                                f"referenceResolution: source manager {msid} is B2B user {mtid}"))
    return out
