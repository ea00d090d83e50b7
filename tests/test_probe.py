"""The change probe against the real cycle: for each class of change to Graph, a probe that skips the pair
must agree with what the real tenant runs and the fingerprint (xts_pipeline.unchanged) then decide, and a
change that matters to the pair must make the probe run it. Ignorable changes (an external user in the
source, our own writes coming back) should be skipped by the probe: that is what it is for.

One world (real sandbox over HTTPS, a persistent Dagster instance) in successive cases: each applies one
change, asks the probe, runs the source's RAW+STAGED and the target's SNAPSHOT for real, asks
unchanged.decide, then settles with a real cycle (assets/cycle.py) so the next case starts clean. Every probe
is also checked not to write the store (a digest of every table before and after).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import orjson
import pytest

from assets.cycle import run_cycle
from assets.definitions import CYCLE_TAG, KIND_TAG
from assets.resources import load_topology
from assets.summary import UNCHANGED, format_summary
from assets.sync import RAW, SNAPSHOT, STAGED
from tests.e2e_world import DST, PAIR, SRC, World, make_world
from xts_pipeline import probe, store, unchanged
from xts_pipeline.sandbox.wire import DELTA_TOKEN_TTL_S

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]

RUN, SKIP = "run", "skip"


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    w = make_world(tmp_path_factory.mktemp("probe"))
    home = w.root / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home / "dagster.yaml")  # the committed instance config
    w.instance = dg.DagsterInstance.from_config(str(home))  # a persistent one, as `xts sync` uses
    w.used = set()  # users a case changed already: each case picks fresh ones
    first = cycle(w, "first")
    assert first["outcome"].status == "ok" and first["outcome"].counts["creates"] > 0, first["summary"]
    settle(w, "settled")
    yield w
    w.instance.dispose()
    w.sandbox.stop()


def topology(world: World) -> Any:
    return load_topology(str((world.root / "topology.yaml").absolute()), str(world.sandbox.state_dir))


def cycle(world: World, tag: str) -> dict:
    """One cycle as `xts sync` runs it (every run in this process): its outcome and summary."""
    tags = {CYCLE_TAG: f"probe-{tag}", KIND_TAG: "cli"}
    [o] = run_cycle(world.defs, world.instance, topology(world), world.db, workers=1, tags=tags)
    return {"outcome": o, "summary": format_summary([o])}


def settle(world: World, tag: str) -> None:
    """Real cycles take the change in until the probe skips the pair (at most three: a tampered link is deleted
    in one cycle and provisioned anew in the next, and a cycle whose writes change what the next snapshot shows
    of other users, e.g. the reports of a deleted manager, runs the next one too); after each, the probe and
    the real tenant runs are judged again (the cycle's writes come back in them)."""
    for attempt in range(3):
        res = cycle(world, f"{tag}-settle{attempt}")
        assert res["outcome"].status in ("ok", UNCHANGED) and not res["outcome"].errors, res["summary"]
        after = judge(world, f"{tag}-after{attempt}")
        if after.probe.skip:
            return
    raise AssertionError(f"the probe does not skip after three settling cycles: {after.probe} {after.found.sides}")


def store_digest(db: str) -> dict[str, tuple[int, str]]:
    """Every table of the store: its row count and an order-free hash of its rows."""
    with store.connect(db) as con:
        names = [r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE NOT temporary AND schema_name = 'main'").fetchall()]
        return {n: con.execute(f'SELECT count(*), coalesce(md5(string_agg(h, \',\' ORDER BY h)), \'\') FROM '  # noqa: S608
                               f'(SELECT md5(CAST(t AS VARCHAR)) AS h FROM "{n}" t)').fetchone() for n in names}


@dataclass
class Verdicts:
    probe: unchanged.Decision
    real: unchanged.Decision
    found: probe.Result


def judge(world: World, tag: str) -> Verdicts:
    """The probe's decision (it must not write the store), then the real tenant runs' and the fingerprint's."""
    topo = topology(world)
    before = store_digest(world.db)
    found = probe.probe(world.db, topo, [PAIR], world.graph)
    after = store_digest(world.db)
    assert after == before, {k: (before.get(k), v) for k, v in after.items() if before.get(k) != v}
    tags = {CYCLE_TAG: f"probe-{tag}", KIND_TAG: "cli"}
    assert world.materialize([RAW, STAGED], SRC, tags=tags).success
    assert world.materialize([SNAPSHOT], DST, tags=tags).success
    real = unchanged.decide(world.db, topo, [PAIR])[PAIR]
    # SAFETY: the probe never skips a pair that the real runs would run.
    assert real.skip or not found.decisions[PAIR].skip, (found.decisions[PAIR], real, found.sides)
    return Verdicts(found.decisions[PAIR], real, found)


# ---- picking users ----------------------------------------------------------------------------------------

def fresh(world: World, users: list[dict], ok: Callable[[dict], bool]) -> dict:
    user = next(u for u in users if u["id"] not in world.used and ok(u))
    world.used.add(user["id"])
    return user


def in_scope_member(world: World) -> dict:
    return fresh(world, world.source_users(), lambda u: u["userType"] == "Member" and u.get("creationType") is None
                 and not u.get("externalUserState") and u.get("department") not in (None, "Legal"))


def source_guest(world: World) -> dict:
    return fresh(world, world.source_users(), lambda u: u["userType"] == "Guest")


def links(world: World) -> dict[str, dict]:
    """Target user id -> what the pair last wrote to it (links.applied) of the pair's active links."""
    with store.connect(world.db) as con:
        return {t: orjson.loads(a) for t, a in con.execute(
            "SELECT target_user_id, CAST(applied AS VARCHAR) FROM links WHERE pair_key = ? AND state = 'active'",
            [PAIR]).fetchall()}


def linked_target_user(world: World) -> dict:
    linked = links(world)
    return fresh(world, world.target_users(), lambda u: u["id"] in linked and u.get("_state") == "active")


def unlinked_target_member(world: World) -> dict:
    linked = links(world)
    return fresh(world, world.target_users(), lambda u: u["id"] not in linked and u["userType"] == "Member"
                 and u.get("_state") == "active" and not any(k.endswith("_xtsSourceObjectId") for k in u))


def extension_name(world: World, short: str) -> str:
    with store.connect(world.db) as con:
        return con.execute("SELECT full_name FROM target_extensions WHERE tenant = ? AND short_name = ?",
                           [DST, short]).fetchone()[0]


def new_user_body(domain: str, **extra: Any) -> dict:
    nick = "probe" + uuid.uuid4().hex[:8]
    return {"accountEnabled": True, "displayName": f"Probe {nick}", "mailNickname": nick,
            "userPrincipalName": f"{nick}@{domain}", "passwordProfile": {"password": "Probe-Pass-1234!"},
            "department": "Engineering", **extra}


def dst_groups(world: World) -> list[dict]:
    return world.graph(DST).request("GET", "groups")["value"]


# ---- the catalogue: (change, what the probe must say, what the real runs say; None: no claim) ----------

def src_member_edited(world: World) -> None:
    user = in_scope_member(world)
    world.graph(SRC).request("PATCH", f"users/{user['id']}", json_body={"jobTitle": "Probe Edited"})


def src_member_manager_changed(world: World) -> None:
    """api/user-delta.md: manager changes come as `manager@delta` on the user's delta item."""
    user, boss = in_scope_member(world), in_scope_member(world)
    world.graph(SRC).request("PUT", f"users/{user['id']}/manager/$ref",
                             json_body={"@odata.id": f"https://graph.microsoft.com/v1.0/users/{boss['id']}"})


def src_member_deleted(world: World) -> None:
    """api/user-delta.md: a deleted user comes back in the next round as its id with `@removed`."""
    world.graph(SRC).request("DELETE", f"users/{in_scope_member(world)['id']}")


def src_manager_leaves(world: World) -> None:
    """A member who manages another member is deleted: the pair deletes its target user, and the next target
    snapshot shows the report without a manager ($expand=manager names only an existing user) while the delta
    does not name the report (its own object did not change). The settling cycle's probe must see that too."""
    users = world.source_users()
    ids = {u["id"] for u in users}
    bosses = {u.get("_managerId") for u in users if u.get("_managerId") in ids}
    boss = fresh(world, users, lambda u: u["id"] in bosses and u["userType"] == "Member"
                 and u.get("creationType") is None and u.get("department") not in (None, "Legal"))
    world.graph(SRC).request("DELETE", f"users/{boss['id']}")
    world.left = boss["id"]


def src_manager_returns(world: World) -> None:
    """The manager who left is restored in the source (api/directory-deleteditems-restore.md); the pair
    restores its target user, whose reports the next snapshot may show under it again without a delta item."""
    world.graph(SRC).request("POST", f"directory/deletedItems/{world.left}/restore")


def src_member_created(world: World) -> None:
    world.graph(SRC).request("POST", "users", json_body=new_user_body(f"{SRC}.onmicrosoft.com"))


def src_member_turned_external_state(world: World) -> None:
    """xts_pipeline/external.py: an internal member converted to B2B keeps creationType null and userType Member
    but gets an externalUserState; it is a leaver for the pair."""
    world.sandbox.admin("PATCH", f"/tenants/{SRC}/users/{in_scope_member(world)['id']}",
                        json={"externalUserState": "PendingAcceptance"})


def src_member_turned_guest(world: World) -> None:
    world.sandbox.admin("PATCH", f"/tenants/{SRC}/users/{in_scope_member(world)['id']}", json={"userType": "Guest"})


def src_guest_edited(world: World) -> None:
    world.graph(SRC).request("PATCH", f"users/{source_guest(world)['id']}", json_body={"jobTitle": "Guest Edit"})


def src_guest_invited(world: World) -> None:
    """resources/invitation.md: "When the process is completed, the invited user becomes an external user in
    the organization." (the sandbox creates the guest at once: #EXT# UPN, creationType Invitation). Two of
    them: the small seed has no guest of its own, and the two cases after this one edit and delete one each."""
    for _ in range(2):
        world.graph(SRC).request("POST", "invitations", json_body={
            "invitedUserEmailAddress": f"probe{uuid.uuid4().hex[:6]}@partner.example",
            "inviteRedirectUrl": "https://myapps.microsoft.com"})


def src_guest_deleted(world: World) -> None:
    world.graph(SRC).request("DELETE", f"users/{source_guest(world)['id']}")


def src_member_managed_by_guest(world: World) -> None:
    """An in-scope member's manager becomes an external user (a guest invited now): the member's own item."""
    made = world.graph(SRC).request("POST", "invitations", json_body={
        "invitedUserEmailAddress": f"boss{uuid.uuid4().hex[:6]}@partner.example",
        "inviteRedirectUrl": "https://myapps.microsoft.com"})
    world.guest_boss = made["invitedUser"]["id"]
    world.used.add(world.guest_boss)
    user = in_scope_member(world)
    world.graph(SRC).request("PUT", f"users/{user['id']}/manager/$ref",
                             json_body={"@odata.id": f"https://graph.microsoft.com/v1.0/users/{world.guest_boss}"})


def src_guest_manager_deleted(world: World) -> None:
    """That external manager is deleted: the delta names only the guest (ignored by the probe); whatever the
    real runs make of the member's manager, the probe may skip only if they do."""
    world.graph(SRC).request("DELETE", f"users/{world.guest_boss}")


def tgt_linked_synced_attribute_edited(world: World) -> None:
    user = linked_target_user(world)
    applied = links(world)[user["id"]]
    attr = next(k for k, v in sorted(applied.items()) if isinstance(v, str) and k not in ("manager",)
                and k in ("jobTitle", "department", "displayName", "officeLocation", "city", "givenName", "surname"))
    world.graph(DST).request("PATCH", f"users/{user['id']}", json_body={attr: applied[attr] + " (edited)"})


def tgt_link_extension_tampered(world: World) -> None:
    user = linked_target_user(world)
    world.graph(DST).request("PATCH", f"users/{user['id']}",
                             json_body={extension_name(world, "xtsSourceObjectId"): str(uuid.uuid4())})


def tgt_link_extension_cleared(world: World) -> None:
    user = linked_target_user(world)
    world.graph(DST).request("PATCH", f"users/{user['id']}", json_body={extension_name(world, "xtsSyncConfig"): None})


def tgt_linked_deleted(world: World) -> None:
    world.graph(DST).request("DELETE", f"users/{linked_target_user(world)['id']}")


def tgt_linked_manager_deleted(world: World) -> None:
    """A linked user who manages other linked users is deleted in the target: the pair restores it, and the
    snapshot after shows its reports with their manager again while the delta names only the restored user."""
    linked = links(world)
    users = world.target_users()
    bosses = {u.get("_managerId") for u in users if u["id"] in linked}
    boss = fresh(world, users, lambda u: u["id"] in linked and u["id"] in bosses and u.get("_state") == "active")
    world.graph(DST).request("DELETE", f"users/{boss['id']}")


def tgt_linked_manager_changed(world: World) -> None:
    """A target admin points a linked user at another manager (api/user-delta.md: a manager change comes as
    `manager@delta` on the user's own item)."""
    user, boss = linked_target_user(world), unlinked_target_member(world)
    world.graph(DST).request("PUT", f"users/{user['id']}/manager/$ref",
                             json_body={"@odata.id": f"https://graph.microsoft.com/v1.0/users/{boss['id']}"})


def tgt_roles_unreadable(world: World) -> None:
    """RoleManagement.Read.Directory revoked on the target's app: the snapshot notes that role holders could
    not be read (extract.read_role_holders), which the pair's guardrails take into account."""
    perms = world.sandbox.admin("GET", "state")["tenants"][DST]["permissions"]
    world.sandbox.admin("PUT", f"/tenants/{DST}/permissions",
                        json={"permissions": [p for p in perms if p != "RoleManagement.Read.Directory"]})
    world.undo.append(lambda: world.sandbox.admin("PUT", f"/tenants/{DST}/permissions", json={"permissions": perms}))


def tgt_unlinked_member_edited(world: World) -> None:
    user = unlinked_target_member(world)
    world.graph(DST).request("PATCH", f"users/{user['id']}", json_body={"officeLocation": "Probe Office"})


def out_of_scope_member(world: World) -> dict:
    """A source member the pair's filter leaves out (department Legal): no target user holds its address yet
    (an in-scope member's address is its linked target user's, which Graph keeps unique)."""
    return fresh(world, world.source_users(), lambda u: u["userType"] == "Member" and u.get("creationType") is None
                 and u.get("department") == "Legal")


def tgt_colliding_mail_created(world: World) -> None:
    """A new target user whose mail is a source member's address: adoption would look at it."""
    src = out_of_scope_member(world)
    made = world.graph(DST).request("POST", "users", json_body=new_user_body(
        f"{DST}.onmicrosoft.com", mail=src.get("mail") or src["userPrincipalName"]))
    world.undo.append(lambda: world.graph(DST).request("DELETE", f"users/{made['id']}"))


def tgt_colliding_ext_upn_created(world: World) -> None:
    """A new target user whose #EXT# UPN stands for a source member's address (local_domain#EXT#@target)."""
    local, domain = (out_of_scope_member(world)["userPrincipalName"]).split("@")
    made = world.graph(DST).request("POST", "users", json_body={
        **new_user_body(f"{DST}.onmicrosoft.com"), "userPrincipalName": f"{local}_{domain}#EXT#@{DST}.onmicrosoft.com"})
    world.undo.append(lambda: world.graph(DST).request("DELETE", f"users/{made['id']}"))


def _role_id(world: World) -> str:
    return world.graph(DST).request("GET", "directoryRoles")["value"][0]["id"]


def tgt_role_holder_added(world: World) -> None:
    """api/directoryrole-list-members.md: role members are read again by every snapshot, not in the delta."""
    world.sandbox.admin("POST", f"/tenants/{DST}/directoryRoles/{_role_id(world)}/members",
                        json={"type": "user", "id": unlinked_target_member(world)["id"]})


def tgt_role_holder_added_linked(world: World) -> None:
    world.sandbox.admin("POST", f"/tenants/{DST}/directoryRoles/{_role_id(world)}/members",
                        json={"type": "user", "id": linked_target_user(world)["id"]})


def tgt_role_group_added(world: World) -> None:
    world.sandbox.admin("POST", f"/tenants/{DST}/directoryRoles/{_role_id(world)}/members",
                        json={"type": "group", "displayName": "Probe Role Group"})


def tgt_policy_toggled(world: World) -> None:
    world.set_policy(False)
    world.undo.append(lambda: world.set_policy(True))


def tgt_group_added(world: World) -> None:
    gid = str(uuid.uuid4())
    world.sandbox.admin("PUT", f"/tenants/{DST}/groups/{gid}", json={
        "displayName": "Probe Group", "groupTypes": [], "mailEnabled": False, "securityEnabled": True,
        "isAssignableToRole": False, "membershipRule": None, "membershipRuleProcessingState": None,
        "mail": None, "mailNickname": "probegroup", "description": None})


def tgt_group_rule_changed(world: World) -> None:
    group = next(g for g in dst_groups(world) if g.get("membershipRule"))
    raw = world.graph(DST).request("GET", f"groups/{group['id']}")
    world.sandbox.admin("PUT", f"/tenants/{DST}/groups/{group['id']}",
                        json={**raw, "membershipRule": raw["membershipRule"] + ' or (user.city -eq "Probe")'})


def _role_group_members(world: World, add: dict) -> None:
    group = next(g for g in dst_groups(world) if g.get("isAssignableToRole"))
    now = [m["id"] for m in world.graph(DST).request("GET", f"groups/{group['id']}/members")["value"]]
    world.sandbox.admin("PUT", f"/tenants/{DST}/groups/{group['id']}/members", json={"ids": [*now, add["id"]]})


def tgt_role_group_member_added(world: World) -> None:
    _role_group_members(world, unlinked_target_member(world))


def tgt_role_group_member_added_linked(world: World) -> None:
    _role_group_members(world, linked_target_user(world))


def tgt_own_write_echo(world: World) -> None:
    """Nothing but what the settle cycle wrote: the echo (the probe reads it again from a fresh link)."""


def store_staging_unfinished(world: World) -> None:
    """A raw user updated after the stage watermark: staging did not see it (a crashed source run)."""
    with store.connect(world.db) as con:
        con.execute("UPDATE raw_users SET updated_at = (SELECT value FROM watermarks WHERE name = 'stage:' || ?) "
                    "+ INTERVAL 1 SECOND WHERE tenant = ? AND id = (SELECT min(id) FROM raw_users WHERE tenant = ?)",
                    [SRC, SRC, SRC])


def store_staged_row_missing(world: World) -> None:
    """A raw user with neither a staged nor a rejected row (the staging's transaction did not finish)."""
    with store.connect(world.db) as con:
        uid = con.execute("SELECT min(id) FROM staged_users WHERE tenant = ?", [SRC]).fetchone()[0]
        con.execute("DELETE FROM staged_users WHERE tenant = ? AND id = ?", [SRC, uid])
        # as a crash between the raw write and the staging leaves it: the raw row newer than the watermark too
        con.execute("UPDATE raw_users SET updated_at = (SELECT value FROM watermarks WHERE name = 'stage:' || ?) "
                    "+ INTERVAL 1 SECOND WHERE tenant = ? AND id = ?", [SRC, SRC, uid])


def delta_token_expired(world: World) -> None:
    """concepts/delta-query-overview.md and the sandbox's syncStateNotFound: "The sync state generation is not
    found. The delta token is expired and data must be synchronized again." Both links expire at once."""
    world.sandbox.admin("POST", "clock/advance", json={"seconds": DELTA_TOKEN_TTL_S + 3600})


CASES: list[tuple[Callable[[World], None], str, str | None]] = [
    (tgt_own_write_echo, SKIP, SKIP),
    (src_member_edited, RUN, RUN),
    (src_member_manager_changed, RUN, RUN),
    (src_member_deleted, RUN, RUN),
    (src_manager_leaves, RUN, RUN),
    (src_manager_returns, RUN, RUN),
    (src_member_created, RUN, RUN),
    (src_member_turned_external_state, RUN, RUN),
    (src_member_turned_guest, RUN, RUN),
    (src_guest_invited, SKIP, SKIP),  # before the two below
    (src_guest_edited, SKIP, SKIP),
    (src_guest_deleted, SKIP, SKIP),
    (src_member_managed_by_guest, RUN, RUN),
    (src_guest_manager_deleted, None, None),
    (tgt_linked_synced_attribute_edited, RUN, RUN),
    (tgt_link_extension_tampered, RUN, RUN),
    (tgt_link_extension_cleared, RUN, RUN),
    (tgt_linked_deleted, RUN, RUN),
    (tgt_linked_manager_deleted, RUN, RUN),
    (tgt_linked_manager_changed, RUN, RUN),
    (tgt_unlinked_member_edited, RUN, RUN),
    (tgt_colliding_mail_created, RUN, RUN),
    (tgt_colliding_ext_upn_created, RUN, RUN),
    (tgt_role_holder_added, RUN, RUN),
    (tgt_role_holder_added_linked, None, None),
    (tgt_role_group_added, RUN, RUN),
    (tgt_policy_toggled, RUN, RUN),
    (tgt_roles_unreadable, RUN, RUN),
    (tgt_group_added, RUN, RUN),
    (tgt_group_rule_changed, RUN, RUN),
    (tgt_role_group_member_added, RUN, RUN),
    (tgt_role_group_member_added_linked, None, None),
    (store_staging_unfinished, RUN, None),
    (store_staged_row_missing, RUN, None),
    (delta_token_expired, RUN, None),  # last: every token (also the access tokens) is old afterwards
]


# What the probe says for some cases (in its decision or its source side's verdict): the right cause, not another.
WHY = {"src_guest_invited": "all external before and after", "src_guest_edited": "all external before and after",
       "src_guest_deleted": "all external before and after", "src_member_turned_external_state": "changed",
       "src_member_turned_guest": "changed", "store_staging_unfinished": "did not finish",
       "store_staged_row_missing": "did not finish", "delta_token_expired": "the delta link expired",
       "src_manager_returns": "source src: user"}


@pytest.mark.parametrize(("change", "probe_says", "real_says"), CASES, ids=[c[0].__name__ for c in CASES])
def test_the_probe_never_skips_what_a_real_cycle_runs(world, change, probe_says, real_says):
    world.undo = []
    change(world)
    v = judge(world, change.__name__)
    for fix in world.undo:
        fix()
    if probe_says is not None:
        assert v.probe.skip == (probe_says == SKIP), (v.probe, v.found.sides)
    if change.__name__ in WHY:
        said = " | ".join([v.probe.reason, *(x.reason for x in v.found.sides.values())])
        assert WHY[change.__name__] in said, said
    if real_says is not None:
        assert v.real.skip == (real_says == SKIP), v.real
    settle(world, change.__name__)
