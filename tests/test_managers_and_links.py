"""Planner rules of issue 12 (and issue 10's manager sentence), on a small DuckDB world: managers that
converge, links that are repaired, and deprovisioning of every user the pair created or adopted."""

from __future__ import annotations

import json

from tests.test_planner import PAIR, SRC_TID, World, sid
from xts_pipeline import planner, store


def _source(world: World, oid: str, manager: str | None) -> None:
    with store.connect(world.db) as con:
        con.execute("INSERT OR REPLACE INTO staged_users VALUES ('contoso', ?, ?, ?, ?, 'Member', NULL, true, ?)",
                    [oid, f"{oid}@contoso.com", f"{oid}@contoso.com", oid,
                     json.dumps({"manager": {"id": manager} if manager else None})])


def _people(world: World, manager_of_a: str | None, target_manager: str | None, applied_mgr: str | None = None):
    a, b, c = sid(1), sid(2), sid(3)
    for n, oid in ((1, a), (2, b), (3, c)):
        world.want(oid, f"u{n}@contoso.com")
    world.target("ta", "u1@contoso.com", link=a, applied={"displayName": "u1", "accountEnabled": True,
                                                          **({"manager": applied_mgr} if applied_mgr else {})},
                 manager={"id": target_manager} if target_manager else None)
    world.target("tb", "u2@contoso.com", link=b, applied={"displayName": "u2", "accountEnabled": True})
    world.target("tc", "u3@contoso.com", link=c, applied={"displayName": "u3", "accountEnabled": True})
    _source(world, a, manager_of_a)
    _source(world, b, None)
    _source(world, c, None)
    return a, b, c


def test_a_manager_removed_in_the_source_leaves_the_target_manager_alone(tmp_path):
    """Entra (cross-tenant-synchronization-overview.md, FAQ "Manager provisioning"): "If a user's manager is
    removed in the source tenant and no new manager is assigned, the manager attribute isn't updated in the
    target tenant." """
    world = World(str(tmp_path / "x.duckdb"))
    a, _, _ = _people(world, manager_of_a=None, target_manager="tb", applied_mgr="tb")
    p = world.plan()
    assert p[a]["action"] == "skip", p[a]


def test_a_new_source_manager_who_is_synced_replaces_it(tmp_path):
    """Same FAQ: "Both the user and their manager must be in scope for provisioning"; a synced new manager
    replaces the target's."""
    world = World(str(tmp_path / "x.duckdb"))
    a, _, c = _people(world, manager_of_a=sid(3), target_manager="tb", applied_mgr="tb")
    p = world.plan()
    assert p[a]["action"] == "update"
    assert p[a]["changes"] == [{"property": "manager", "old": "tb", "new": "tc"}]


def test_an_unresolved_manager_is_planned_again_every_cycle_until_it_holds(tmp_path):
    world = World(str(tmp_path / "x.duckdb"))
    a, b, _ = _people(world, manager_of_a=sid(2), target_manager=None)
    assert world.plan()[a]["changes"] == [{"property": "manager", "old": None, "new": "tb"}]
    with store.connect(world.db) as con:
        planner.mark_applied(con, PAIR.key)  # the write failed or was held: nothing recorded
    assert world.plan()[a]["changes"] == [{"property": "manager", "old": None, "new": "tb"}]  # incremental too
    with store.connect(world.db) as con:  # the manager write lands and apply records it
        con.execute("UPDATE links SET applied = json_merge_patch(applied, '{\"manager\": \"tb\"}') "
                    "WHERE source_object_id = ?", [a])
        con.execute("UPDATE target_users SET attrs = json_merge_patch(attrs, '{\"manager\": {\"id\": \"tb\"}}') "
                    "WHERE id = 'ta'")
        planner.mark_applied(con, PAIR.key)
    assert a not in world.plan()


def test_a_matched_user_without_the_link_on_the_target_gets_it_written(tmp_path):
    world = World(str(tmp_path / "x.duckdb"))
    world.want(sid(1), "u1@contoso.com")
    world.target("ta", "u1@contoso.com")  # invited by a killed run: no link or provenance on the target
    with store.connect(world.db) as con:
        con.execute("INSERT INTO links (pair_key, source_tenant_id, source_object_id, target_tenant, target_user_id, "
                    "state, linked_at) VALUES (?, ?, ?, 'fabrikam', 'ta', 'pending', now())", [PAIR.key, SRC_TID, sid(1)])
    p = world.plan()[sid(1)]
    assert (p["action"], p["target"], p["match"]) == ("update", "ta", "link")
    written = {c["property"] for c in p["changes"]}
    assert {k for k in written if k.endswith(("xtsSourceObjectId", "xtsSourceTenantId", "xtsSyncConfig"))} == {
        k for k in p["desired"] if k.endswith(("xtsSourceObjectId", "xtsSourceTenantId", "xtsSyncConfig"))}
    assert "link and provenance missing" in p["reason"]


def test_departed_users_known_by_the_store_or_the_journal_are_deprovisioned(tmp_path):
    world = World(str(tmp_path / "x.duckdb"))
    world.want(sid(9), "stays@contoso.com")
    world.target("tp", "pending@contoso.com")  # pending link, no extension on the target
    world.target("tj", "journal@contoso.com")  # invitation of a killed run: only the journal knows it
    world.target("tx", "stranger@contoso.com")  # a guest nobody here created: never touched
    with store.connect(world.db) as con:
        con.execute("INSERT INTO links (pair_key, source_tenant_id, source_object_id, target_tenant, target_user_id, "
                    "state, linked_at) VALUES (?, ?, ?, 'fabrikam', 'tp', 'pending', now())", [PAIR.key, SRC_TID, sid(1)])
        con.execute("INSERT INTO write_journal (pair_key, cycle_id, change_id, op_kind, source_object_id, target_user_id, mail, "
                    "lookup_filter, state, started_at, finished_at) VALUES (?, 'c0', 'x1', 'create', ?, NULL, "
                    "'journal@contoso.com', NULL, 'in_flight', now(), NULL)", [PAIR.key, sid(2)])
    p = world.plan()
    assert (p[sid(1)]["action"], p[sid(1)]["target"]) == ("delete", "tp")
    assert (p[sid(2)]["action"], p[sid(2)]["target"]) == ("delete", "tj")
    assert "tx" not in {r["target"] for r in p.values()}
    assert not planner.consistency_problems(world.db, PAIR)
