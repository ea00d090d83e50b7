"""The SQL planner: matching order, the three-way diff, the identity binding, lifecycle actions, and
convergence (plan, apply, plan again = no-op). Each documented rule quotes Microsoft's sentence."""

from __future__ import annotations

import contextlib
import json
import uuid
import weakref
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xts_pipeline import fingerprint, planner, queries, store

SRC_TID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
EXT = {k: f"extension_0f1e2d3c4b5a69788796a5b4c3d2e1f0_{k}" for k in ("xtsSourceTenantId", "xtsSourceObjectId",
                                                                     "xtsSyncConfig")}
PAIR = planner.PairSpec(key="contoso__fabrikam", source="contoso", target="fabrikam", source_tenant_id=SRC_TID)
LINK_SQL = """INSERT OR REPLACE INTO links (pair_key, source_tenant_id, source_object_id, target_tenant,
              target_user_id, state, linked_at, deleted_at, applied) VALUES (?, ?, ?, 'fabrikam', ?, ?, now(), NULL, ?)"""


TARGET_SQL = ("INSERT OR REPLACE INTO target_users (tenant, id, user_principal_name, mail, display_name, user_type, "
              "creation_type, external_user_state, account_enabled, link_source_tenant_id, link_source_object_id, "
              "link_sync_config, attrs) VALUES ('fabrikam', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
CREATED_SQL = TARGET_SQL.replace("INSERT OR REPLACE", "INSERT")  # a second create of one user must fail loudly


def sid(n: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"src{n}"))


class World:
    """A tiny DuckDB world: desired users of the pair and the target's users.

    One connection for the world's life (the planner's own connections share its database instance):
    opening the file per insert, and checkpointing it at each close, made the property tests take minutes.
    """

    def __init__(self, db: str) -> None:
        self.db = db
        self._open = contextlib.ExitStack()
        self.con = con = self._open.enter_context(store.connect(db))
        weakref.finalize(self, self._open.close)  # worlds made inside hypothesis examples close when dropped
        con.executemany("INSERT INTO target_extensions (tenant, short_name, full_name) VALUES ('fabrikam', ?, ?)",
                        [[k, v] for k, v in EXT.items()])
        con.execute("INSERT INTO target_policy (tenant, source_tenant, source_tenant_id, is_sync_allowed, policy, "
                    "read_at) VALUES ('fabrikam', 'contoso', ?, true, '{}', now())", [SRC_TID])
        con.execute("INSERT INTO tenant_domains (tenant, domain, is_default, read_at) "
                    "VALUES ('contoso', 'contoso.com', true, now())")

    def close(self) -> None:
        self._open.close()

    def want(self, oid: str, mail: str, enabled: bool = True, create_only: dict | None = None, **attrs) -> None:
        d = {"displayName": attrs.get("displayName", mail.split("@")[0]), "accountEnabled": enabled,
             "jobTitle": attrs.get("jobTitle")}
        d.update({k: v for k, v in attrs.items() if k not in d})
        d = {k: v for k, v in d.items() if v is not None}  # nulls are not provisioned (mappings drop them)
        self.con.execute(
            "INSERT OR REPLACE INTO desired_users (pair_key, source_tenant_id, source_object_id, user_principal_name, "
            "mail, display_name, account_enabled, desired_create, desired_update, computed_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, now())",
            [PAIR.key, SRC_TID, oid, mail, mail, d["displayName"], enabled,
             json.dumps({**d, **(create_only or {})}), json.dumps(d)])

    def target(self, tid: str, mail: str, *, guest: bool = True, link: str | None = None,
               applied: dict | None = None, state: str | None = None, **attrs) -> None:
        a = {"displayName": attrs.get("displayName", mail.split("@")[0]), "accountEnabled": attrs.get("enabled", True),
             "jobTitle": attrs.get("jobTitle")}
        a.update({k: v for k, v in attrs.items() if k not in ("displayName", "enabled", "jobTitle")})
        if link:
            a.update({EXT["xtsSourceTenantId"]: SRC_TID, EXT["xtsSourceObjectId"]: link,
                      EXT["xtsSyncConfig"]: PAIR.key})
        upn = mail.replace("@", "_") + "#EXT#@fabrikam.onmicrosoft.com" if guest else mail
        self.con.execute(TARGET_SQL,
                         [tid, upn, mail, a["displayName"], "Member" if not guest else "Guest",
                          "Invitation" if guest else None, state, a["accountEnabled"], SRC_TID if link else None, link,
                          PAIR.key if link else None, json.dumps(a)])
        if link and applied is not None:  # what this pair last wrote to the user
            self.con.execute(LINK_SQL, [PAIR.key, SRC_TID, link, tid, "active", json.dumps(applied)])

    def plan(self, now: str | None = None, pair: planner.PairSpec = PAIR) -> dict[str, dict]:
        summary = planner.plan_pair(self.db, pair, "cycle-1", now=now)
        assert sum(summary.counts.values()) >= 0
        cur = self.con.execute("SELECT source_object_id, target_user_id, action, CAST(changes AS VARCHAR), reason, "
                               "match, CAST(desired AS VARCHAR), mail FROM plan ORDER BY 1")
        return {r[0]: {"target": r[1], "action": r[2], "changes": json.loads(r[3]), "reason": r[4],
                       "match": r[5], "desired": json.loads(r[6]) if r[6] else None, "mail": r[7]}
                for r in cur.fetchall()}

    def simulate_apply(self) -> list[tuple[str, str, str]]:
        """What a perfect target does with the plan (used to prove convergence); returns the writes
        (source user, property, action) and records them in links.applied as apply does."""
        from xts_pipeline.apply import record_applied

        con = self.con
        rows = con.execute("SELECT source_object_id, target_user_id, action, CAST(changes AS VARCHAR), "
                           "CAST(desired AS VARCHAR), mail FROM plan WHERE action <> 'skip'").fetchall()
        writes = []
        for oid, tid, action, changes, desired, mail in rows:
            writes += [(oid, c["property"], action) for c in json.loads(changes)]
            if action == "create":
                tid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"t{oid}"))
                attrs = json.loads(desired)
                con.execute(CREATED_SQL,
                            [tid, mail.replace("@", "_") + "#EXT#@f", mail, attrs.get("displayName"), "Member",
                             "Invitation", "PendingAcceptance", attrs.get("accountEnabled"), SRC_TID, oid, PAIR.key,
                             json.dumps(attrs)])
                con.execute(LINK_SQL, [PAIR.key, SRC_TID, oid, tid, "active", None])
            elif action in ("update", "disable", "adopt"):
                attrs = json.loads(con.execute("SELECT CAST(attrs AS VARCHAR) FROM target_users WHERE id = ?",
                                               [tid]).fetchone()[0])
                attrs.update({c["property"]: c["new"] for c in json.loads(changes)})
                con.execute("UPDATE target_users SET attrs = ?, account_enabled = ?, link_source_tenant_id = ?, "
                            "link_source_object_id = ? WHERE id = ?",
                            [json.dumps(attrs), attrs.get("accountEnabled"),
                             attrs.get(EXT["xtsSourceTenantId"]), attrs.get(EXT["xtsSourceObjectId"]), tid])
                if action == "adopt":
                    con.execute(LINK_SQL, [PAIR.key, SRC_TID, oid, tid, "active", None])
            elif action == "delete":
                con.execute("DELETE FROM target_users WHERE id = ?", [tid])
                con.execute("UPDATE links SET state = 'deleted', deleted_at = now() WHERE pair_key = ? "
                            "AND source_object_id = ?", [PAIR.key, oid])
            record_applied(con, PAIR.key, {"action": action, "source_object_id": oid,
                                           "desired": json.loads(desired) if desired else {},
                                           "changes": json.loads(changes)})
        return writes


@pytest.fixture
def world(tmp_path):
    w = World(str(tmp_path / "p.duckdb"))
    yield w
    w.close()


def test_first_cycle_creates_with_link_and_provenance(world):
    world.want(sid(1), "adele@contoso.com")
    p = world.plan()[sid(1)]
    assert p["action"] == "create"
    assert p["desired"][EXT["xtsSourceObjectId"]] == sid(1)
    assert p["desired"][EXT["xtsSourceTenantId"]] == SRC_TID
    assert p["desired"][EXT["xtsSyncConfig"]] == PAIR.key
    assert {c["property"] for c in p["changes"]} >= {"displayName", EXT["xtsSourceObjectId"]}


def test_attribute_change_updates_only_that_property(world):
    """A source change is written: "If you make changes to the user in the source tenant, then during the
    next synchronization cycle, the user in the target tenant is updated to match the user in the source
    tenant." (cross-tenant-synchronization-overview.md)"""
    world.want(sid(1), "adele@contoso.com", jobTitle="Engineer")
    world.target("t1", "adele@contoso.com", link=sid(1), jobTitle="Intern",
                 applied={"displayName": "adele", "accountEnabled": True, "jobTitle": "Intern"})
    p = world.plan()[sid(1)]
    assert p["action"] == "update"
    assert p["changes"] == [{"property": "jobTitle", "old": "Intern", "new": "Engineer"}]


def test_target_edits_persist_until_the_source_changes(world):
    """"Cross-tenant synchronization doesn't query for changes in the target. If you don't make any changes
    to the synced user in the source tenant, then user attribute changes that you made in the target tenant
    persist." (cross-tenant-synchronization-overview.md) Full re-diffs follow the same rule."""
    last = {"displayName": "adele", "accountEnabled": True, "jobTitle": "Engineer"}
    world.want(sid(1), "adele@contoso.com", jobTitle="Engineer")
    world.target("t1", "adele@contoso.com", link=sid(1), jobTitle="Edited in the target", applied=last)
    assert world.plan()[sid(1)]["action"] == "skip"
    full = planner.plan_pair(world.db, PAIR, "c-full", incremental=False)
    assert full.full and full.writes == 0 and full.drift == 1  # reported, not rewritten
    world.want(sid(1), "adele@contoso.com", jobTitle="Engineer", department="R&D")  # another property changes
    p = world.plan()[sid(1)]
    assert [c["property"] for c in p["changes"]] == ["department"]  # the target's jobTitle still stands


def test_sign_in_block_set_in_the_target_persists(world):
    """"If you don't make any changes to the synced user in the source tenant, the setting to block sign-in
    in the target tenant persists." (cross-tenant-synchronization-overview.md) Deliberate difference: a
    change of another source attribute does not re-enable the user either (docs/config.md, drift)."""
    last = {"displayName": "adele", "accountEnabled": True, "jobTitle": "x"}
    world.want(sid(1), "adele@contoso.com", jobTitle="x")
    world.target("t1", "adele@contoso.com", link=sid(1), enabled=False, jobTitle="x", applied=last)
    assert world.plan()[sid(1)]["action"] == "skip"
    world.want(sid(1), "adele@contoso.com", jobTitle="y")
    p = world.plan()[sid(1)]
    assert p["action"] == "update" and [c["property"] for c in p["changes"]] == ["jobTitle"]


def test_drift_repair_is_a_planned_write(world):
    """`drift: repair` (our option, off by default) writes back what the source says, as a visible update."""
    last = {"displayName": "adele", "accountEnabled": True, "jobTitle": "Engineer"}
    world.want(sid(1), "adele@contoso.com", jobTitle="Engineer")
    world.target("t1", "adele@contoso.com", link=sid(1), jobTitle="Edited", applied=last)
    p = world.plan(pair=planner.PairSpec(**{**PAIR.__dict__, "drift": "repair"}))[sid(1)]
    assert p["action"] == "update" and p["changes"] == [{"property": "jobTitle", "old": "Edited", "new": "Engineer"}]
    with store.connect(world.db) as con:
        assert con.execute("SELECT property, repaired FROM plan_drift").fetchall() == [("jobTitle", True)]


def test_lost_store_recovers_last_applied_without_rewriting(world):
    """With no last-applied record (store lost), the source's current values are taken as last applied:
    nothing is rewritten, the differences are reported as drift, and a later source change is written."""
    world.want(sid(1), "adele@contoso.com", jobTitle="Engineer")
    world.target("t1", "adele@contoso.com", link=sid(1), jobTitle="Edited")  # no links row at all
    s1 = planner.plan_pair(world.db, PAIR, "c1")
    assert s1.writes == 0 and s1.drift == 1
    with store.connect(world.db) as con:
        applied = json.loads(con.execute("SELECT CAST(applied AS VARCHAR) FROM links").fetchone()[0])
    assert applied["jobTitle"] == "Engineer"
    world.want(sid(1), "adele@contoso.com", jobTitle="Manager")
    assert world.plan()[sid(1)]["changes"] == [{"property": "jobTitle", "old": "Edited", "new": "Manager"}]


def test_user_removed_in_the_target_is_provisioned_again_next_cycle(world):
    """"If users remove themselves and they are in scope, they'll be provisioned again during the next
    provisioning cycle." (cross-tenant-synchronization-configure.md) An ordinary (incremental) cycle, once."""
    world.want(sid(1), "a@contoso.com")
    world.plan()
    world.simulate_apply()
    with store.connect(world.db) as con:
        planner.mark_applied(con, PAIR.key)
        con.execute("DELETE FROM target_users WHERE link_source_object_id = ?", [sid(1)])
    inc = planner.plan_pair(world.db, PAIR, "c2")
    assert not inc.full and inc.counts["create"] == 1
    world.simulate_apply()
    with store.connect(world.db) as con:
        planner.mark_applied(con, PAIR.key)
    assert planner.plan_pair(world.db, PAIR, "c3").writes == 0


def test_unchanged_is_skip(world):
    world.want(sid(1), "adele@contoso.com")
    world.target("t1", "adele@contoso.com", link=sid(1))
    assert world.plan()[sid(1)]["action"] == "skip"


def test_disabled_source_blocks_sign_in(world):
    """"If the user is blocked from sign-in in the source tenant (accountEnabled = false), they're blocked
    from sign-in in the target. This action isn't a deletion but an update to the accountEnabled property."
    (cross-tenant-synchronization-overview.md) The disable row writes accountEnabled only; the cycle's other
    changes are an update row of their own."""
    world.want(sid(1), "adele@contoso.com", enabled=False, jobTitle="CFO")
    world.target("t1", "adele@contoso.com", link=sid(1), jobTitle="VP",
                 applied={"displayName": "adele", "accountEnabled": True, "jobTitle": "VP"})
    with store.connect(world.db) as con:
        planner.plan_pair(world.db, PAIR, "c1")
        rows = con.execute("SELECT action, CAST(changes AS VARCHAR), change_id FROM plan ORDER BY action").fetchall()
    assert [(a, [c["property"] for c in json.loads(ch)]) for a, ch, _ in rows] == [
        ("disable", ["accountEnabled"]), ("update", ["jobTitle"])]
    assert json.loads(rows[0][1]) == [{"property": "accountEnabled", "old": True, "new": False}]
    assert rows[0][2] != rows[1][2]
    assert planner.consistency_problems(world.db, PAIR) == []


def test_disabled_source_user_never_provisioned_is_skipped(world):
    """"Provisioning a user that is disabled in Microsoft Entra ID isn't supported. They must be active in
    Microsoft Entra ID before they're provisioned." (app-provisioning/how-provisioning-works.md)"""
    world.want(sid(1), "adele@contoso.com", enabled=False)
    p = world.plan()[sid(1)]
    assert p["action"] == "skip" and "disabled in the source" in p["reason"]


def test_disabled_then_out_of_scope_is_not_soft_deleted(world):
    """"Users aren't soft deleted from the target tenant in this scenario: ... Update the accountEnabled status
    to false on the user in the source tenant. ... The accountEnabled status changes to false in the target
    tenant. Remove the user from the group in the source tenant." (cross-tenant-synchronization-overview.md)"""
    world.want(sid(1), "adele@contoso.com", enabled=False)
    world.target("t1", "adele@contoso.com", link=sid(1),
                 applied={"displayName": "adele", "accountEnabled": True})
    assert world.plan()[sid(1)]["action"] == "disable"
    world.simulate_apply()
    with store.connect(world.db) as con:
        con.execute("DELETE FROM desired_users")  # removed from the assigned group
    p = world.plan()[sid(1)]
    assert p["action"] == "skip" and "disabled" in p["reason"]


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
        con.execute("INSERT INTO links (pair_key, source_tenant_id, source_object_id, target_tenant, "
                    "target_user_id, state, linked_at, deleted_at) VALUES (?, ?, ?, 'fabrikam', 'tdel', 'deleted', now(), ?)",
                    [PAIR.key, SRC_TID, sid(2), datetime(2026, 1, 10)])
    p = world.plan(now="2026-01-20 00:00:00")[sid(2)]
    assert (p["action"], p["target"]) == ("restore", "tdel")
    assert world.plan(now="2026-03-01 00:00:00")[sid(2)]["action"] == "create"


def test_existing_b2b_guest_is_adopted(world):
    """"Cross-tenant synchronization matches the user and makes any necessary updates to the user, such as
    updating the display name." (cross-tenant-synchronization-overview.md) As its own action, `adopt`."""
    world.want(sid(3), "Guest.One@contoso.com")
    world.target("tg", "guest.one@contoso.com", guest=True, state="Accepted",
                 identities=[{"signInType": "federated", "issuer": "ExternalAzureAD"},
                             {"signInType": "userPrincipalName", "issuer": "fabrikam.onmicrosoft.com"}])
    p = world.plan()[sid(3)]
    assert (p["action"], p["target"], p["match"]) == ("adopt", "tg", "adopt")
    assert {c["property"] for c in p["changes"]} >= set(EXT.values())


def test_adoption_keeps_the_guest_user_type(world):
    """"By default, userType isn't updated from guest to member. You can configure this property in the
    attribute mappings." (cross-tenant-synchronization-overview.md)"""
    world.want(sid(3), "guest.one@contoso.com", create_only={"userType": "Member"})
    world.target("tg", "guest.one@contoso.com", guest=True, userType="Guest")
    p = world.plan()[sid(3)]
    assert p["action"] == "adopt" and "userType" not in {c["property"] for c in p["changes"]}


@pytest.mark.parametrize("setup,why", [
    (lambda w: w.target("tg", "x@contoso.com", link="someone-else"), "synced by"),
    (lambda w: w.target("tg", "x@thirdco.com"), "not in a verified domain"),
    (lambda w: w.target("tg", "x@contoso.com", state="Accepted",
                        identities=[{"signInType": "federated", "issuer": "MicrosoftAccount"}]), "identity provider"),
    (lambda w: w.target("tg", "x@contoso.com", state="Accepted"), "identities were not read"),
], ids=["linked-elsewhere", "unverified-domain", "other-idp", "identities-unread"])
def test_adoption_refusals_leave_the_target_user_untouched(world, setup, why):
    """An existing target user is adopted only when every rule of the identity binding holds."""
    mail = "x@thirdco.com" if why.startswith("not in") else "x@contoso.com"
    world.want(sid(7), mail)
    setup(world)
    p = world.plan()[sid(7)]
    assert p["action"] == "skip" and why in p["reason"] and "untouched" in p["reason"]


def test_adoption_refuses_protected_users(world):
    """Role holders, role-assignable group members and users listed in the policy are never adopted."""
    world.want(sid(7), "x@contoso.com")
    world.target("tg", "x@contoso.com")
    with store.connect(world.db) as con:
        con.execute("INSERT INTO target_role_members VALUES ('fabrikam', 'r1', 'Global Administrator', 'tg')")
    assert "directory role Global Administrator" in world.plan()[sid(7)]["reason"]
    with store.connect(world.db) as con:
        con.execute("DELETE FROM target_role_members")
        con.execute("INSERT INTO target_groups VALUES ('fabrikam', 'g1', 'Tier0', '[]', NULL, NULL, true, '{}')")
        con.execute("INSERT INTO target_group_members VALUES ('fabrikam', 'g1', 'tg')")
    assert "role-assignable group Tier0" in world.plan()[sid(7)]["reason"]
    with store.connect(world.db) as con:
        con.execute("DELETE FROM target_group_members")
    protected = planner.PairSpec(**{**PAIR.__dict__, "protected": ("X@contoso.com",)})
    assert "protected" in world.plan(pair=protected)[sid(7)]["reason"]
    assert world.plan()[sid(7)]["action"] == "adopt"


def test_a_user_bound_to_another_pair_in_the_store_is_never_re_targeted(world):
    """A second source reusing the mail of a user already synced from the first source is skipped, naming the owner."""
    world.want(sid(7), "x@contoso.com")
    world.target("tg", "x@contoso.com")
    with store.connect(world.db) as con:
        con.execute("INSERT INTO links (pair_key, source_tenant_id, source_object_id, target_tenant, target_user_id, "
                    "state) VALUES ('northwind__fabrikam', 'n-tid', 'n-user', 'fabrikam', 'tg', 'pending')")
    p = world.plan()[sid(7)]
    assert p["action"] == "skip" and "northwind__fabrikam (source user n-user)" in p["reason"]


def test_unverified_domains_trust_nothing(world):
    world.want(sid(7), "x@contoso.com")
    world.target("tg", "x@contoso.com")
    with store.connect(world.db) as con:
        con.execute("DELETE FROM tenant_domains")
    assert "never read" in world.plan()[sid(7)]["reason"]


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


@pytest.mark.slow  # seconds per example: in `make test-all`, not the fast loop
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
        con.execute("INSERT INTO links (pair_key, source_tenant_id, source_object_id, target_tenant, "
                    "target_user_id, state, linked_at, deleted_at) VALUES (?, ?, ?, 'fabrikam', 'tdel', 'deleted', now(), ?)",
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
    # The full re-diff follows the three-way rule: sid(3)'s target edit is drift, reported, not rewritten.
    assert full.full and full.counts["update"] == 1 and full.drift == 1


def test_none_mapping_default_fills_an_empty_target_attribute(world):
    """None mapping: "The target attribute is left unmodified. However, if the target attribute is ever
    empty, it's populated with the default value that you specify." (customize-application-attributes.md)"""
    world.want(sid(1), "a@contoso.com", **{"@fill": {"usageLocation": "US"}})
    world.target("t1", "a@contoso.com", link=sid(1), applied={"displayName": "a", "accountEnabled": True})
    p = world.plan()[sid(1)]
    assert p["changes"] == [{"property": "usageLocation", "old": None, "new": "US"}]
    assert "@fill" not in p["desired"]
    world.simulate_apply()
    assert world.plan()[sid(1)]["action"] == "skip"
    with store.connect(world.db) as con:  # the target sets another value: left unmodified
        con.execute("UPDATE target_users SET attrs = json_merge_patch(attrs, '{\"usageLocation\": \"DE\"}')")
    assert world.plan()[sid(1)]["action"] == "skip"


steps = st.lists(st.one_of(
    st.tuples(st.just("source"), st.integers(0, 2), st.sampled_from(["jobTitle", "department"]),
              st.sampled_from(["a", "b", None])),
    st.tuples(st.just("target"), st.integers(0, 2), st.sampled_from(["jobTitle", "department"]),
              st.sampled_from(["a", "t", None])),
    st.tuples(st.just("cycle"), st.just(0), st.just(""), st.just(None))), min_size=1, max_size=14)


@pytest.mark.slow  # seconds per example: in `make test-all`, not the fast loop
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=steps)
def test_property_only_source_changes_are_written(tmp_path_factory, steps):
    """For any sequence of source changes and target-side edits, a cycle writes a linked user's property only
    when the source changed it since it was last applied, and plan -> apply -> plan is empty."""
    w = World(str(tmp_path_factory.mktemp("p") / "p.duckdb"))
    source = {n: {"jobTitle": "a", "department": "a"} for n in range(3)}
    last: dict[tuple[int, str], object] = {}

    def put(n: int) -> None:
        w.want(sid(n), f"u{n}@contoso.com", **source[n])

    for n in range(3):
        put(n)
    for kind, n, prop, value in [*steps, ("cycle", 0, "", None)]:
        if kind == "source":
            source[n][prop] = value
            put(n)
        elif kind == "target":
            with store.connect(w.db) as con:
                con.execute("UPDATE target_users SET attrs = json_merge_patch(attrs, ?) WHERE link_source_object_id = ?",
                            [json.dumps({prop: value if value is not None else ""}), sid(n)])
        else:
            plan = w.plan()
            for oid, prop_, action in w.simulate_apply():
                n_ = next(i for i in range(3) if sid(i) == oid)
                if action == "update" and prop_ in ("jobTitle", "department"):
                    assert source[n_][prop_] != last.get((n_, prop_)), (oid, prop_, plan[oid])
            for i in range(3):
                last.update({(i, p): source[i][p] for p in ("jobTitle", "department")})
            again = planner.plan_pair(w.db, PAIR, "again")
            assert again.writes == 0


def test_a_store_only_link_without_record_writes_the_mapped_attributes(world):
    """A link the store knows but the target lacks (its link PATCH, which carries the attributes, never
    landed) has nothing applied: the mapped attributes are written, not seeded as already there."""
    world.want(sid(1), "a@contoso.com", jobTitle="Engineer")
    world.target("t1", "a@contoso.com", jobTitle=None)  # invited, never patched
    with store.connect(world.db) as con:
        con.execute(LINK_SQL, [PAIR.key, SRC_TID, sid(1), "t1", "active", None])
    p = world.plan()[sid(1)]
    assert p["match"] == "link" and {"property": "jobTitle", "old": None, "new": "Engineer"} in p["changes"]


_JSON_VALUE = st.recursive(st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.text(max_size=6),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                                        max_size=3), max_leaves=6)
_PLAN_ROW = st.fixed_dictionaries({
    "action": st.sampled_from(["create", "update", "disable", "delete", "skip", "adopt"]),
    "source_object_id": st.one_of(st.none(), st.text(max_size=8)),
    "target_user_id": st.one_of(st.none(), st.text(max_size=8)),
    "changes": st.one_of(st.none(), st.just("[]"), st.lists(st.fixed_dictionaries({
        "property": st.text(max_size=5), "old": _JSON_VALUE, "new": _JSON_VALUE}), max_size=5).map(json.dumps)),
    "desired": st.one_of(st.none(), st.just("null"), st.dictionaries(st.text(max_size=5), _JSON_VALUE,
                                                                     max_size=5).map(json.dumps)),
})


@pytest.mark.slow  # a DuckDB file per example: ~8 s
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_PLAN_ROW, max_size=8))
def test_stored_fingerprint_is_plan_fingerprint(tmp_path, rows):
    """The planner's fast fingerprint of the stored plan is the guardrails' plan_fingerprint of its rows."""
    from xts_pipeline.vocabulary import plan_fingerprint

    db = tmp_path / f"fp-{uuid.uuid4()}.duckdb"
    with store.connect(db) as con:
        con.executemany("""INSERT INTO plan (pair_key, cycle_id, source_tenant_id, source_object_id, target_user_id,
                                             action, changes, desired) VALUES ('p', 'c', 'tid', ?, ?, ?, ?, ?)""",
                        [[r["source_object_id"], r["target_user_id"], r["action"], r["changes"], r["desired"]]
                         for r in rows] or [[None, None, "skip", None, None]])
        as_dicts = [dict(zip(fingerprint.COLUMNS, r, strict=True))
                    for r in con.execute(queries.load("planner/writing_rows"), {"pair": "p"}).fetchall()]
        assert planner.stored_plan_fingerprint(con, "p") == plan_fingerprint(as_dicts)
