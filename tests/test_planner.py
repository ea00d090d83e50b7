"""The SQL planner: matching order, lifecycle actions, and convergence (plan, apply, plan again = no-op)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xts_pipeline import planner, store

SRC_TID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
EXT = {k: f"extension_0f1e2d3c4b5a69788796a5b4c3d2e1f0_{k}" for k in ("xtsSourceTenantId", "xtsSourceObjectId",
                                                                     "xtsSyncConfig")}
# links gained an `applied` column: inserts name the columns they fill.
LINK_COLS = " (pair_key, source_tenant_id, source_object_id, target_tenant, target_user_id, state, linked_at, deleted_at) "
PAIR = planner.PairSpec(key="contoso__fabrikam", source="contoso", target="fabrikam", source_tenant_id=SRC_TID)


def sid(n: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"src{n}"))


class World:
    """A tiny DuckDB world: desired users of the pair and the target's users."""

    def __init__(self, db: str) -> None:
        self.db = db
        with store.connect(db) as con:
            con.executemany("INSERT INTO target_extensions VALUES ('fabrikam', ?, ?)", [[k, v] for k, v in EXT.items()])
            con.execute("INSERT INTO target_policy VALUES ('fabrikam', 'contoso', ?, true, '{}', now())", [SRC_TID])

    def want(self, oid: str, mail: str, enabled: bool = True, **attrs) -> None:
        d = {"displayName": attrs.get("displayName", mail.split("@")[0]), "accountEnabled": enabled,
             "jobTitle": attrs.get("jobTitle")}
        with store.connect(self.db) as con:
            con.execute("INSERT OR REPLACE INTO desired_users VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, now())",
                        [PAIR.key, SRC_TID, oid, mail, mail, d["displayName"], enabled, json.dumps(d), json.dumps(d)])

    def target(self, tid: str, mail: str, *, guest: bool = True, link: str | None = None, **attrs) -> None:
        a = {"displayName": attrs.get("displayName", mail.split("@")[0]), "accountEnabled": attrs.get("enabled", True),
             "jobTitle": attrs.get("jobTitle")}
        if link:
            a.update({EXT["xtsSourceTenantId"]: SRC_TID, EXT["xtsSourceObjectId"]: link,
                      EXT["xtsSyncConfig"]: PAIR.key})
        upn = mail.replace("@", "_") + "#EXT#@fabrikam.onmicrosoft.com" if guest else mail
        with store.connect(self.db) as con:
            con.execute("INSERT OR REPLACE INTO target_users VALUES ('fabrikam', ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?)",
                        [tid, upn, mail, a["displayName"], "Member" if not guest else "Guest",
                         "Invitation" if guest else None, a["accountEnabled"], SRC_TID if link else None, link,
                         PAIR.key if link else None, json.dumps(a)])

    def plan(self, now: str | None = None, pair: planner.PairSpec = PAIR) -> dict[str, dict]:
        summary = planner.plan_pair(self.db, pair, "cycle-1", now=now)
        assert sum(summary.counts.values()) >= 0
        with store.connect(self.db) as con:
            cur = con.execute("SELECT source_object_id, target_user_id, action, CAST(changes AS VARCHAR), reason, "
                              "match, CAST(desired AS VARCHAR), mail FROM plan ORDER BY 1")
            return {r[0]: {"target": r[1], "action": r[2], "changes": json.loads(r[3]), "reason": r[4],
                           "match": r[5], "desired": json.loads(r[6]) if r[6] else None, "mail": r[7]}
                    for r in cur.fetchall()}

    def simulate_apply(self) -> None:
        """What a perfect target does with the plan (used to prove convergence)."""
        with store.connect(self.db) as con:
            rows = con.execute("SELECT source_object_id, target_user_id, action, CAST(changes AS VARCHAR), "
                               "CAST(desired AS VARCHAR), mail FROM plan WHERE action <> 'skip'").fetchall()
        for oid, tid, action, changes, desired, mail in rows:
            with store.connect(self.db) as con:
                if action == "create":
                    tid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"t{oid}"))
                    attrs = json.loads(desired)
                    con.execute("INSERT INTO target_users VALUES ('fabrikam', ?, ?, ?, ?, 'Member', 'Invitation', "
                                "'PendingAcceptance', ?, ?, ?, ?, ?)",
                                [tid, mail.replace("@", "_") + "#EXT#@f", mail, attrs.get("displayName"),
                                 attrs.get("accountEnabled"), SRC_TID, oid, PAIR.key, json.dumps(attrs)])
                    con.execute("INSERT OR REPLACE INTO links" + LINK_COLS + "VALUES (?, ?, ?, 'fabrikam', ?, 'active', now(), NULL)",
                                [PAIR.key, SRC_TID, oid, tid])
                elif action in ("update", "disable"):
                    attrs = json.loads(con.execute("SELECT CAST(attrs AS VARCHAR) FROM target_users WHERE id = ?",
                                                   [tid]).fetchone()[0])
                    attrs.update({c["property"]: c["new"] for c in json.loads(changes)})
                    con.execute("UPDATE target_users SET attrs = ?, account_enabled = ?, link_source_tenant_id = ?, "
                                "link_source_object_id = ? WHERE id = ?",
                                [json.dumps(attrs), attrs.get("accountEnabled"),
                                 attrs.get(EXT["xtsSourceTenantId"]), attrs.get(EXT["xtsSourceObjectId"]), tid])
                elif action == "delete":
                    con.execute("DELETE FROM target_users WHERE id = ?", [tid])
                    con.execute("INSERT OR REPLACE INTO links" + LINK_COLS + "VALUES (?, ?, ?, 'fabrikam', ?, 'deleted', now(), now())",
                                [PAIR.key, SRC_TID, oid, tid])


@pytest.fixture
def world(tmp_path) -> World:
    return World(str(tmp_path / "p.duckdb"))


def test_first_cycle_creates_with_link_and_provenance(world):
    world.want(sid(1), "adele@contoso.com")
    p = world.plan()[sid(1)]
    assert p["action"] == "create"
    assert p["desired"][EXT["xtsSourceObjectId"]] == sid(1)
    assert p["desired"][EXT["xtsSourceTenantId"]] == SRC_TID
    assert p["desired"][EXT["xtsSyncConfig"]] == PAIR.key
    assert {c["property"] for c in p["changes"]} >= {"displayName", EXT["xtsSourceObjectId"]}


def test_attribute_change_updates_only_that_property(world):
    world.want(sid(1), "adele@contoso.com", jobTitle="Engineer")
    world.target("t1", "adele@contoso.com", link=sid(1), jobTitle="Intern")
    p = world.plan()[sid(1)]
    assert p["action"] == "update"
    assert p["changes"] == [{"property": "jobTitle", "old": "Intern", "new": "Engineer"}]


def test_unchanged_is_skip(world):
    world.want(sid(1), "adele@contoso.com")
    world.target("t1", "adele@contoso.com", link=sid(1))
    assert world.plan()[sid(1)]["action"] == "skip"


def test_disabled_source_blocks_sign_in(world):
    world.want(sid(1), "adele@contoso.com", enabled=False)
    world.target("t1", "adele@contoso.com", link=sid(1))
    p = world.plan()[sid(1)]
    assert p["action"] == "disable"
    assert {"property": "accountEnabled", "old": True, "new": False} in p["changes"]


def test_out_of_scope_soft_deletes(world):
    world.target("t9", "gone@contoso.com", link=sid(9))
    p = world.plan()[sid(9)]
    assert (p["action"], p["target"]) == ("delete", "t9")


def test_deprovision_disable_and_none(world):
    world.target("t9", "gone@contoso.com", link=sid(9))
    assert world.plan(pair=planner.PairSpec(**{**PAIR.__dict__, "deprovision_action": "disable"}))[sid(9)]["action"] == "disable"
    assert world.plan(pair=planner.PairSpec(**{**PAIR.__dict__, "deprovision_action": "none"}))[sid(9)]["action"] == "skip"


def test_rejected_source_user_is_not_deleted(world):
    world.target("t9", "bad@contoso.com", link=sid(9))
    with store.connect(world.db) as con:
        con.execute("INSERT INTO rejected_users VALUES ('contoso', ?, 'x', 'mail: bad', '{}', now())", [sid(9)])
    assert world.plan()[sid(9)]["action"] == "skip"


def test_reentering_scope_within_30_days_restores(world):
    world.want(sid(2), "back@contoso.com")
    with store.connect(world.db) as con:
        con.execute("INSERT INTO links" + LINK_COLS + "VALUES (?, ?, ?, 'fabrikam', 'tdel', 'deleted', now(), ?)",
                    [PAIR.key, SRC_TID, sid(2), datetime(2026, 1, 10)])
    p = world.plan(now="2026-01-20 00:00:00")[sid(2)]
    assert (p["action"], p["target"]) == ("restore", "tdel")
    assert world.plan(now="2026-03-01 00:00:00")[sid(2)]["action"] == "create"


def test_existing_b2b_guest_is_adopted(world):
    world.want(sid(3), "Guest.One@contoso.com")
    world.target("tg", "guest.one@contoso.com", guest=True)
    p = world.plan()[sid(3)]
    assert (p["action"], p["target"], p["match"]) == ("update", "tg", "adopt")
    assert {c["property"] for c in p["changes"]} >= set(EXT.values())


def test_internal_member_is_never_matched(world):
    world.want(sid(4), "ceo@fabrikam.com")
    world.target("tm", "ceo@fabrikam.com", guest=False)
    p = world.plan()[sid(4)]
    assert p["action"] == "skip" and p["target"] is None
    assert "internal member" in p["reason"]


def test_two_source_users_with_one_mail_create_once(world):
    world.want(sid(5), "dup@contoso.com")
    world.want(sid(6), "DUP@contoso.com")
    actions = sorted(v["action"] for v in world.plan().values())
    assert actions == ["create", "skip"]


def test_policy_off_blocks_the_pair(world):
    world.want(sid(1), "adele@contoso.com")
    with store.connect(world.db) as con:
        con.execute("UPDATE target_policy SET is_sync_allowed = false")
    s = planner.plan_pair(world.db, PAIR, "c2")
    assert s.sync_allowed is False and "isSyncAllowed" in s.blocked_reason and "fabrikam" in s.blocked_reason


def test_fingerprint_ignores_cycle_and_tracks_content(world):
    world.want(sid(1), "adele@contoso.com")
    a = planner.plan_pair(world.db, PAIR, "c1").fingerprint
    b = planner.plan_pair(world.db, PAIR, "c2").fingerprint
    world.want(sid(2), "bob@contoso.com")
    c = planner.plan_pair(world.db, PAIR, "c3").fingerprint
    assert a == b != c


def test_plan_then_apply_converges(world):
    world.want(sid(1), "a@contoso.com")
    world.want(sid(2), "b@contoso.com", enabled=False)
    world.target("tb", "b@contoso.com", guest=True)
    world.target("t9", "gone@contoso.com", link=sid(9))
    world.plan()
    world.simulate_apply()
    assert {v["action"] for v in world.plan().values()} == {"skip"}


users = st.lists(
    st.tuples(st.integers(0, 30), st.sampled_from(["a", "b", "c"]), st.booleans(), st.sampled_from(["x", "y", None])),
    max_size=12, unique_by=lambda t: t[0])
targets = st.lists(st.tuples(st.integers(0, 40), st.sampled_from(["guest", "member", "linked"]), st.sampled_from(["x", "z"])),
                   max_size=8, unique_by=lambda t: t[0])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(users=users, targets=targets)
def test_property_plan_apply_plan_is_noop(tmp_path_factory, users, targets):
    """Whatever the starting state, applying the plan once leaves nothing to do (no duplicates, no loops)."""
    w = World(str(tmp_path_factory.mktemp("h") / "h.duckdb"))
    for n, name, enabled, title in users:
        w.want(sid(n), f"{name}{n}@contoso.com", enabled=enabled, jobTitle=title)
    for n, kind, title in targets:
        w.target(f"t{n}", f"{'abc'[n % 3]}{n}@contoso.com", guest=kind != "member",
                 link=sid(n) if kind == "linked" else None, jobTitle=title)
    first = w.plan()
    creates = [k for k, v in first.items() if v["action"] == "create"]
    assert len({first[k]["mail"].lower() for k in creates}) == len(creates)
    w.simulate_apply()
    second = w.plan()
    assert {v["action"] for v in second.values()} <= {"skip"}
    with store.connect(w.db) as con:
        dup = con.execute("SELECT count(*) FROM (SELECT link_source_object_id FROM target_users "
                          "WHERE link_source_object_id IS NOT NULL GROUP BY 1 HAVING count(*) > 1)").fetchone()[0]
    assert dup == 0


def test_restore_window_boundary(world):
    world.want(sid(2), "back@contoso.com")
    deleted = datetime(2026, 1, 1)
    with store.connect(world.db) as con:
        con.execute("INSERT INTO links" + LINK_COLS + "VALUES (?, ?, ?, 'fabrikam', 'tdel', 'deleted', now(), ?)",
                    [PAIR.key, SRC_TID, sid(2), deleted])
    inside = (deleted + timedelta(days=29, hours=23)).isoformat(sep=" ")
    outside = (deleted + timedelta(days=30, hours=1)).isoformat(sep=" ")
    assert world.plan(now=inside)[sid(2)]["action"] == "restore"
    assert world.plan(now=outside)[sid(2)]["action"] == "create"


def test_incremental_plan_covers_changed_pending_and_deleted_only(world):
    """After an applied plan, the next one looks only at what changed, as Entra's incremental cycles do."""
    world.want(sid(1), "a@contoso.com", jobTitle="x")
    world.want(sid(2), "b@contoso.com", jobTitle="x")
    world.want(sid(3), "c@contoso.com", jobTitle="x")
    world.plan()
    world.simulate_apply()
    with store.connect(world.db) as con:
        planner.mark_applied(con, PAIR.key)
        # drift made in the target: Entra leaves it until the source changes
        con.execute("UPDATE target_users SET attrs = json_merge_patch(attrs, '{\"jobTitle\": \"edited\"}') "
                    "WHERE link_source_object_id = ?", [sid(3)])
    world.want(sid(1), "a@contoso.com", jobTitle="y")  # changed at the source
    with store.connect(world.db) as con:
        con.execute("DELETE FROM desired_users WHERE source_object_id = ?", [sid(2)])  # left scope
    inc = world.plan()
    assert {k: v["action"] for k, v in inc.items()} == {sid(1): "update", sid(2): "delete"}
    full = planner.plan_pair(world.db, PAIR, "c-full", incremental=False)
    assert full.full and full.counts["update"] == 2  # the full re-diff also repairs the drift on sid(3)
