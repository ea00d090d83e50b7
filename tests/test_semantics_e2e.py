"""Entra's documented semantics end to end: the Dagster assets against the sandbox over HTTPS, one small world,
cycles in order. Each test quotes the sentence it encodes (entra-docs page named)."""

from __future__ import annotations

import pytest

from assets.sync import pair_spec
from tests.e2e_world import DST, PAIR, SRC, World, make_world
from xts_pipeline import planner, store

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    w = make_world(tmp_path_factory.mktemp("sem"))
    assert w.cycle()["pair"].success  # the first cycle provisions everyone in scope
    yield w
    w.sandbox.stop()


def linked(world: World) -> dict[str, dict]:
    out = {}
    for u in world.target_users():
        oid = next((v for k, v in u.items() if k.endswith("_xtsSourceObjectId")), None)
        if oid and u.get("_state", 0) in (0, "active"):
            out[oid] = u
    return out


def internal(u: dict) -> bool:
    return u["userType"] == "Member" and u.get("creationType") != "Invitation"


def test_target_edits_and_sign_in_block_persist_until_the_source_changes(world):
    """"Cross-tenant synchronization doesn't query for changes in the target. If you don't make any changes to
    the synced user in the source tenant, then user attribute changes that you made in the target tenant
    persist." and "If you don't make any changes to the synced user in the source tenant, the setting to block
    sign-in in the target tenant persists." (cross-tenant-synchronization-overview.md)"""
    sid, user = sorted(linked(world).items())[0]
    world.graph(DST).request("PATCH", f"users/{user['id']}", json_body={"jobTitle": "Set by the target",
                                                                        "accountEnabled": False})
    res = world.cycle()  # an incremental cycle does not even look at the user
    assert set(res["plan"]) <= {"skip"} and res["log"] == {}
    spec = pair_spec(world.defs.resources["topology"].load(), PAIR)
    full = planner.plan_pair(world.db, spec, "full-rediff", incremental=False)  # the daily full re-diff
    assert full.full and full.writes == 0 and full.drift == 2  # jobTitle and accountEnabled: reported only
    with store.connect(world.db) as con:
        assert {r[0] for r in con.execute("SELECT property FROM plan_drift WHERE source_object_id = ?",
                                          [sid]).fetchall()} == {"jobTitle", "accountEnabled"}
    world.graph(SRC).request("PATCH", f"users/{sid}", json_body={"department": "Research"})
    res = world.cycle()
    assert res["log"].get("update/Success") == 1
    with store.connect(world.db) as con:
        changed = con.execute("SELECT CAST(changes AS VARCHAR) FROM plan WHERE source_object_id = ? "
                              "AND action = 'update'", [sid]).fetchone()[0]
    assert '"department"' in changed and '"jobTitle"' not in changed and '"accountEnabled"' not in changed
    after = linked(world)[sid]
    assert (after["jobTitle"], after["accountEnabled"], after["department"]) == ("Set by the target", False, "Research")


def test_a_user_removed_in_the_target_is_provisioned_again_once(world):
    """"If users remove themselves and they are in scope, they'll be provisioned again during the next
    provisioning cycle." (cross-tenant-synchronization-configure.md)"""
    sid, user = sorted(linked(world).items())[1]
    world.graph(DST).request("DELETE", f"users/{user['id']}")
    res = world.cycle()
    assert res["plan"].get("create") == 1 and res["log"].get("create/Success") == 1
    assert linked(world)[sid]["id"] != user["id"]
    again = world.cycle()
    assert set(again["plan"]) <= {"skip"}


def test_a_disabled_user_never_provisioned_is_skipped(world):
    """"Provisioning a user that is disabled in Microsoft Entra ID isn't supported. They must be active in
    Microsoft Entra ID before they're provisioned." (app-provisioning/how-provisioning-works.md)"""
    legal = next(u for u in world.source_users() if internal(u) and u.get("department") == "Legal")
    world.graph(SRC).request("PATCH", f"users/{legal['id']}", json_body={"accountEnabled": False,
                                                                         "department": "Sales"})
    res = world.cycle()
    assert "create" not in res["plan"] and legal["id"] not in linked(world)
    with store.connect(world.db) as con:
        status, reason = con.execute("SELECT status, reason FROM provisioning_log WHERE source_object_id = ? "
                                     "ORDER BY logged_at DESC LIMIT 1", [legal["id"]]).fetchone()
    assert status == "Skipped" and "disabled in the source" in reason


def test_a_hostile_source_cannot_take_over_a_guest_of_another_company(world):
    """A source user given the mail of the target's own guest from a third company is not adopted: the mail is
    not in a verified domain of the source tenant. The guest is left untouched."""
    guest = world.graph(DST).request("POST", "invitations", json_body={
        "invitedUserEmailAddress": "victim@thirdco.example", "inviteRedirectUrl": "https://myapps.microsoft.com",
        "sendInvitationMessage": False, "invitedUserType": "Guest"})["invitedUser"]["id"]
    sid = sorted(linked(world))[2]
    domain = world.sandbox.info["tenants"][0]["domain"] if world.sandbox.info["tenants"][0]["name"] == SRC \
        else world.sandbox.info["tenants"][1]["domain"]
    other = world.graph(SRC).request("POST", "users", json_body={
        "accountEnabled": True, "displayName": "Mallory", "mailNickname": "mallory", "department": "Sales",
        "userPrincipalName": f"mallory@{domain}", "mail": "victim@thirdco.example",
        "passwordProfile": {"password": "x-Temp-1234!"}})
    res = world.cycle()
    assert "adopt" not in res["plan"]
    with store.connect(world.db) as con:
        reason = con.execute("SELECT reason FROM plan WHERE source_object_id = ?", [other["id"]]).fetchone()[0]
    assert "not in a verified domain" in reason and "untouched" in reason
    victim = next(u for u in world.target_users() if u["id"] == guest)
    assert not any(k.endswith("_xtsSourceObjectId") for k in victim) and victim["userType"] == "Guest"
    assert sid in linked(world)
