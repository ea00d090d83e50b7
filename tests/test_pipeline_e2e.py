"""End to end: the Dagster assets against a real sandbox over HTTPS, through dg.materialize on a temporary
instance. The scenarios run in order on one small world (30 source users plus an invited guest, 8 target users), like
successive sync cycles of one pair."""

from __future__ import annotations

import pytest

from assets.sync import APPLIED, DESIRED, GUARDED, PLAN, RAW, STAGED
from tests.e2e_world import DST, PAIR, SRC, World, make_world
from xts_pipeline import store

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    w = make_world(tmp_path_factory.mktemp("e2e"))
    yield w
    w.sandbox.stop()


def linked(world: World) -> dict[str, dict]:
    """Active target users by the source object id in their link extension."""
    out = {}
    for u in world.target_users():
        oid = next((v for k, v in u.items() if k.endswith("_xtsSourceObjectId")), None)
        if oid and u.get("_state", 0) in (0, "active"):
            out[oid] = u
    return out


def src_user(world: World, pred) -> dict:
    return next(u for u in world.source_users() if pred(u))


def patch_source(world: World, user_id: str, body: dict) -> None:
    """Change the source through Graph with the source app's own credentials (User.ReadWrite.All)."""
    world.graph(SRC).request("PATCH", f"users/{user_id}", json_body=body)


def set_source_manager(world: World, user_id: str, manager_id: str) -> None:
    """Change a source user's manager through Graph with the source app (PUT /users/{id}/manager/$ref)."""
    ref = f"{world.sandbox.info['graph_url']}/users/{manager_id}"
    world.graph(SRC).request("PUT", f"users/{user_id}/manager/$ref", json_body={"@odata.id": ref})


def internal(u: dict) -> bool:
    return u["userType"] == "Member" and u.get("creationType") != "Invitation"


def test_first_cycle_creates_and_adopts_existing_guest(world):
    # The source has a B2B guest of its own: it must never be synced onwards (the loop guard).
    world.graph(SRC).request("POST", "invitations", json_body={
        "invitedUserEmailAddress": "outsider@partner.example", "inviteRedirectUrl": "https://myapps.microsoft.com",
        "sendInvitationMessage": False, "invitedUserType": "Member"})
    users = world.source_users()
    expected = {u["id"] for u in users if internal(u) and u.get("department") != "Legal"}
    # A B2B guest of one source user already exists in the target (invited by hand, not linked).
    adoptee = next(u for u in users if u["id"] in expected and u.get("mail"))
    invited = world.graph(DST).request("POST", "invitations", json_body={
        "invitedUserEmailAddress": adoptee["mail"], "inviteRedirectUrl": "https://myapps.microsoft.com",
        "sendInvitationMessage": False, "invitedUserType": "Guest"})["invitedUser"]["id"]
    # One synced user reports to someone out of scope (Legal): its B2B user gets no manager.
    legal = next(u for u in users if internal(u) and u.get("department") == "Legal")
    orphan = next(u for u in users if u["id"] in expected and u["id"] != adoptee["id"]
                  and u.get("_managerId") in expected)
    set_source_manager(world, orphan["id"], legal["id"])
    managers = {u["id"]: (legal["id"] if u["id"] == orphan["id"] else u.get("_managerId")) for u in users}
    with_manager = {sid for sid in expected if managers[sid] in expected}
    res = world.cycle()
    assert res["pair"].success
    # The existing guest is adopted (its own action, logged as such), not counted as an update.
    assert res["plan"] == {"create": len(expected) - 1, "adopt": 1}
    # Managers are references: written after every create, in their own pass (Entra's referenceResolution).
    assert res["log"] == {"create/Success": len(expected) - 1, "adopt/Success": 1,
                          "manager/Success": len(with_manager)}
    links = linked(world)
    assert set(links) == expected
    for sid in expected:
        want = links[managers[sid]]["id"] if sid in with_manager else None
        assert links[sid].get("_managerId") == want, sid
    assert links[orphan["id"]].get("_managerId") is None
    assert links[adoptee["id"]]["id"] == invited  # adopted, not duplicated
    # "By default, userType isn't updated from guest to member" (cross-tenant-synchronization-overview.md)
    assert links[adoptee["id"]]["userType"] == "Guest"
    mails = [u["mail"].lower() for u in world.target_users() if u.get("mail")]
    assert len(mails) == len(set(mails))
    one = links[adoptee["id"]]
    assert next(v for k, v in one.items() if k.endswith("_xtsSyncConfig")) == PAIR
    assert next(v for k, v in one.items() if k.endswith("_xtsSourceTenantId")) == world.tids[SRC]
    checks = {e.check_name: e.passed for e in res["pair"].get_asset_check_evaluations()}
    assert checks["plan_is_consistent"] and checks["target_allows_sync"]


def test_source_guests_are_never_synced(world):
    guests = {u["id"] for u in world.source_users() if not internal(u)}
    assert guests
    assert not guests & set(linked(world))


def test_second_cycle_is_a_noop(world):
    res = world.cycle()
    assert set(res["plan"]) <= {"skip"}
    assert res["log"] == {}


def test_manager_change_updates_only_the_manager(world):
    links = linked(world)
    users = {u["id"]: u for u in world.source_users()}
    person = next(sid for sid in sorted(links) if users[sid].get("_managerId") in links)
    old_mgr = users[person]["_managerId"]
    new_mgr = next(sid for sid in sorted(links) if sid not in (person, old_mgr)
                   and users[sid].get("_managerId") != person)
    set_source_manager(world, person, new_mgr)
    res = world.cycle()
    assert res["plan"].get("update") == 1 and res["log"] == {"manager/Success": 1}
    with store.connect(world.db) as con:
        changes = con.execute("SELECT CAST(changes AS VARCHAR) FROM plan WHERE action = 'update'").fetchone()[0]
        logged = con.execute("SELECT CAST(modified_properties AS VARCHAR), action, status, reason FROM "
                             "provisioning_log WHERE source_object_id = ? ORDER BY logged_at DESC LIMIT 1",
                             [person]).fetchone()
    assert changes.count('"property"') == 1 and '"property":"manager"' in changes
    assert links[old_mgr]["id"] in changes and links[new_mgr]["id"] in changes  # old -> new
    assert logged[1:3] == ("Update", "Success") and '"manager"' in logged[0]
    assert logged[3].startswith("referenceResolution")
    after = linked(world)
    assert after[person]["_managerId"] == after[new_mgr]["id"]
    assert {sid: u.get("_managerId") for sid, u in after.items() if sid != person} == \
        {sid: u.get("_managerId") for sid, u in links.items() if sid != person}
    res = world.cycle()
    assert set(res["plan"]) <= {"skip"} and res["log"] == {}


def test_attribute_change_updates_only_that_property(world):
    u = src_user(world, lambda u: u["id"] in linked(world) and u.get("jobTitle") != "Chief Tester")
    patch_source(world, u["id"], {"jobTitle": "Chief Tester"})
    res = world.cycle()
    assert res["plan"].get("update") == 1 and res["log"] == {"update/Success": 1}
    with store.connect(world.db) as con:
        changes = con.execute("SELECT CAST(changes AS VARCHAR) FROM plan WHERE action = 'update'").fetchone()[0]
        logged = con.execute("SELECT CAST(modified_properties AS VARCHAR), action, status FROM provisioning_log "
                             "WHERE source_object_id = ? ORDER BY logged_at DESC LIMIT 1", [u["id"]]).fetchone()
    assert '"property":"jobTitle"' in changes and changes.count('"property"') == 1
    assert logged[1:] == ("Update", "Success") and "Chief Tester" in logged[0]
    assert linked(world)[u["id"]]["jobTitle"] == "Chief Tester"


def test_disabled_source_account_is_blocked_from_sign_in(world):
    u = src_user(world, lambda u: u["id"] in linked(world) and u["accountEnabled"])
    patch_source(world, u["id"], {"accountEnabled": False})
    res = world.cycle()
    assert res["log"] == {"disable/Success": 1}
    assert linked(world)[u["id"]]["accountEnabled"] is False


def test_leaving_scope_soft_deletes_and_reentering_restores(world):
    u = src_user(world, lambda u: u["id"] in linked(world) and u["accountEnabled"])
    target_id = linked(world)[u["id"]]["id"]
    patch_source(world, u["id"], {"department": "Legal"})  # the scoping filter excludes Legal
    res = world.cycle()
    assert res["log"] == {"delete/Success": 1}
    assert u["id"] not in linked(world)
    gone = next(t for t in world.target_users() if t["id"] == target_id)
    assert gone.get("_state") not in (0, "active")  # soft-deleted, still restorable
    patch_source(world, u["id"], {"department": "Sales"})
    res = world.cycle()
    assert res["log"].get("restore/Success") == 1
    back = linked(world)[u["id"]]
    assert back["id"] == target_id and back["department"] == "Sales"  # the same object, not a new one
    assert set(world.cycle()["plan"]) <= {"skip"}


def test_target_policy_off_means_no_writes(world):
    u = src_user(world, lambda u: u["id"] in linked(world) and u["accountEnabled"])
    patch_source(world, u["id"], {"jobTitle": "Blocked Change"})
    world.set_policy(False)
    try:
        before = {t["id"]: t for t in world.target_users()}
        res = world.cycle()
        assert res["plan"].get("update") == 1  # the plan still shows what would happen
        # Either a blocking guardrail stops apply in this run, or apply runs and logs every write as Skipped.
        assert set(res["log"]) <= {"update/Skipped"}
        assert {t["id"]: t for t in world.target_users()} == before
        checks = {e.check_name: e for e in res["pair"].get_asset_check_evaluations()}
        assert not checks["target_allows_sync"].passed
        assert "isSyncAllowed" in checks["target_allows_sync"].description and DST in checks[
            "target_allows_sync"].description
        # Applying that plan on its own still writes nothing, and the log says why.
        assert world.materialize([APPLIED], PAIR).success
        assert {t["id"]: t for t in world.target_users()} == before
        with store.connect(world.db) as con:
            reason = con.execute("SELECT reason FROM provisioning_log WHERE status = 'Skipped' "
                                 "ORDER BY logged_at DESC LIMIT 1").fetchone()[0]
        assert "isSyncAllowed" in reason and DST in reason
    finally:
        world.set_policy(True)
    assert world.cycle()["log"] == {"update/Success": 1}


def test_apply_alone_refuses_a_plan_whose_checks_did_not_run(world):
    u = src_user(world, lambda u: u["id"] in linked(world) and u["accountEnabled"])
    patch_source(world, u["id"], {"jobTitle": "Unchecked"})
    world.cycle(dry_run=True)  # plan + guarded plan + checks
    import dagster as dg

    # Re-plan without its checks or the guarded step, then materialize applied_changes on its own: the
    # guardrails' verdicts in the store are for the old plan, so apply writes nothing.
    res = world.materialize(dg.AssetSelection.assets(DESIRED, PLAN).without_checks(), PAIR)
    assert res.success
    res = world.materialize([APPLIED], PAIR)
    assert res.success
    with store.connect(world.db) as con:
        rows = con.execute("SELECT status, reason FROM provisioning_log WHERE cycle_id = "
                           "(SELECT cycle_id FROM plan_meta WHERE pair_key = ?)", [PAIR]).fetchall()
    assert rows and all(s == "Skipped" and "the guardrails have not judged the current plan" in r for s, r in rows)
    assert linked(world)[u["id"]]["jobTitle"] != "Unchecked"
    assert world.cycle()["log"] == {"update/Success": 1}


def test_dry_run_writes_nothing_and_shows_the_full_plan(world):
    u = src_user(world, lambda u: u["id"] in linked(world) and u["accountEnabled"])
    patch_source(world, u["id"], {"jobTitle": "Dry Run Only"})
    before = world.target_users()
    res = world.cycle(dry_run=True)
    assert res["plan"].get("update") == 1
    assert world.target_users() == before
    mat = res["pair"].asset_materializations_for_node("provisioning_plan")[0]
    assert "Dry Run Only" in mat.metadata["preview"].value


def test_on_demand_provisioning_of_one_user(world):
    a, b = [u for u in world.source_users() if u["id"] in linked(world) and u["accountEnabled"]][:2]
    patch_source(world, a["id"], {"jobTitle": "On Demand"})
    patch_source(world, b["id"], {"jobTitle": "Next Cycle"})
    assert world.materialize([RAW, STAGED], SRC).success
    res = world.materialize([DESIRED, PLAN, GUARDED, APPLIED], PAIR, run_config={
        "ops": {"provisioning_plan": {"config": {"only_user": a["userPrincipalName"]}}}})
    assert res.success
    assert linked(world)[a["id"]]["jobTitle"] == "On Demand"
    assert linked(world)[b["id"]]["jobTitle"] != "Next Cycle"
    assert world.cycle()["log"] == {"update/Success": 1}  # the other change is not lost
    assert linked(world)[b["id"]]["jobTitle"] == "Next Cycle"


def test_cli_sync_dry_run_prints_the_summary(world, tmp_path, monkeypatch, capsys):
    import argparse

    from assets.sync_cli import sync_command

    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setenv("XTS_DUCKDB", world.db)
    args = argparse.Namespace(config=str(world.root / "topology.yaml"), sandbox=str(world.sandbox.state_dir),
                              pairs="src->dst", dry_run=True)
    rc = sync_command(args)
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "| src->dst" in out and "planned" in out and "dry run" in out
    bad = argparse.Namespace(config=str(world.root / "topology.yaml"), sandbox=str(world.sandbox.state_dir),
                             pairs="src->nowhere", dry_run=True)
    assert sync_command(bad) == 2
    assert "src->nowhere" in capsys.readouterr().err


def test_expired_delta_token_resyncs(world):
    """Directory delta tokens last about 7 days; after that the extraction reads everything again."""
    world.sandbox.admin("POST", "/clock/advance", json={"seconds": 8 * 86400})
    res = world.materialize([RAW, STAGED], SRC)
    assert res.success
    mat = res.asset_materializations_for_node("raw_source_users")[0]
    assert mat.metadata["mode"].value == "resync"
    assert mat.metadata["dagster/row_count"].value == len(world.source_users())
    assert not {k: v for k, v in world.cycle()["log"].items() if not k.endswith("/Skipped")}
