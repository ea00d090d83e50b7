"""The target-side guardrails end to end: a real sandbox over HTTPS, the real pipeline (dg.materialize on a
temporary instance, the `xts` CLI functions), a real DuckDB file.

One small world (150 source users into an 8-user target, throttle off), run like successive sync cycles of
one pair. Every attack case checks the target through the sandbox's admin API: nothing of it is written,
and the check that stopped it names the cause. The target's inbound policy is the library's safe default
except for a low deletion threshold, the CEO's name, and `allowed_sources`.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import dagster as dg
import pytest

from assets.definitions import CYCLE_TAG, KIND_TAG, build_definitions
from assets.sync import APPLIED, DESIRED, GUARDED, PLAN, RAW, SNAPSHOT, STAGED
from tests.e2e_world import DST, PAIR, SRC, TENANTS_AND_PAIR, World, seed
from xts_pipeline import store
from xts_pipeline.guardrails import quarantine
from xts_pipeline.guardrails.approvals import find_approval
from xts_pipeline.guardrails.cli import approve_command, release_command
from xts_pipeline.paths import shell_command
from xts_pipeline.sandbox.process import SandboxProcess

pytestmark = pytest.mark.slow

CEO = "Megan Bowen"
LOOKALIKE = "M\u0435gan Bowen"  # Cyrillic small ie (U+0435) for the Latin 'e'
DELETE_THRESHOLD = 5
SHOWN = f"{SRC}->{DST}"

POLICY = """\
inbound_policies:
  dst:
    allowed_sources: {allowed}
    deletions: {{threshold: {threshold}}}
    impersonation:
      protected: [{{value: "{ceo}", label: CEO}}]
storage: {{duckdb_path: xts.duckdb}}
"""


class Guarded(World):
    """The e2e world plus what these tests need: policy edits, check lookups, state of the target."""

    cfg: Any = None

    def write_policy(self, allowed: list[str]) -> None:
        """Rewrite the topology; the topology resource reloads it on the next run (mtime changes)."""
        self.cfg.write_text(TENANTS_AND_PAIR + POLICY.format(allowed=allowed, threshold=DELETE_THRESHOLD, ceo=CEO))
        stamp = time.time() + len(allowed)
        os.utime(self.cfg, (stamp, stamp))

    def checks(self, result: dg.ExecuteInProcessResult) -> dict[str, Any]:
        return {e.check_name.removeprefix("guardrail_"): e for e in result.get_asset_check_evaluations()}

    def target_state(self) -> dict[str, dict]:
        """Every user of the target (deleted ones too), by id: what 'nothing written' is compared on."""
        return {u["id"]: u for u in self.target_users()}

    def log(self, where: str = "TRUE", params: list | None = None) -> list[tuple]:
        with store.connect(self.db) as con:
            return con.execute(
                "SELECT action, status, operation, source_object_id, reason FROM provisioning_log WHERE pair_key = ? "  # noqa: S608
                f"AND cycle_id = (SELECT cycle_id FROM plan_meta WHERE pair_key = ?) AND {where}",
                [PAIR, PAIR, *(params or [])]).fetchall()

    def fingerprint(self) -> str:
        with store.connect(self.db) as con:
            return con.execute("SELECT fingerprint FROM plan_meta WHERE pair_key = ?", [PAIR]).fetchone()[0]

    def patch_source(self, user_id: str, body: dict) -> None:
        """The source's admin changes a user, through Graph with the source app's own credentials."""
        self.graph(SRC).request("PATCH", f"users/{user_id}", json_body=body)

    def cli_args(self, **kw: Any) -> argparse.Namespace:
        return argparse.Namespace(config=str(self.cfg), pair=SHOWN, **kw)


def release_line(world) -> str:
    """The complete, paste-safe release command: this topology is not the demo, so it carries --config."""
    return shell_command("xts", "release", "--config", str(world.cfg.resolve()), "--pair", SHOWN)


def internal(u: dict) -> bool:
    return u["userType"] == "Member" and u.get("creationType") != "Invitation"


def linked_ids(world: Guarded) -> dict[str, str]:
    """source object id -> target user id of the target's active users that carry our link."""
    out = {}
    for u in world.target_users():
        oid = next((v for k, v in u.items() if k.endswith("_xtsSourceObjectId")), None)
        if oid and u.get("_state", 0) in (0, "active"):
            out[oid] = u["id"]
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Guarded:
    root = tmp_path_factory.mktemp("guardrails-e2e")
    state = root / "sandbox"
    seed(state, SRC, 150, 0)
    seed(state, DST, 8, 1)
    sb = SandboxProcess(state, seed=None, throttle="off").start()
    cfg = root / "topology.yaml"
    w = Guarded(root, sb, None, dg.DagsterInstance.ephemeral(), str(root / "xts.duckdb"))  # type: ignore[arg-type]
    w.cfg = cfg
    w.write_policy([])
    w.defs = build_definitions(cfg, str(state), w.db)
    w.set_policy(True)
    w.cast = cast_attackers(w)
    yield w
    sb.stop()


def cast_attackers(w: Guarded) -> dict[str, dict]:
    """Set up the attack: the target's CEO, and source users who mimic or escalate (by the source's admin)."""
    dst_users = w.sandbox.admin("GET", f"/tenants/{DST}/users")["value"]
    ceo = next(u for u in dst_users if u.get("jobTitle") == "Chief Executive Officer")
    w.sandbox.admin("PATCH", f"/tenants/{DST}/users/{ceo['id']}", json={"displayName": CEO})
    # A role holder who is protected only as a directory role holder (read through GET /directoryRoles).
    client = w.graph(DST)
    groups = [g for page in client.iter_groups(select=["id", "isAssignableToRole"]) for g in page]
    assignable = {m["id"] for g in groups if g.get("isAssignableToRole")
                  for page in client.iter_group_members(g["id"]) for m in page}
    roles = [r for page in client.iter_directory_roles() for r in page]
    holders = {m["id"] for r in roles for page in client.iter_role_members(r["id"]) for m in page}
    holder = next(u for u in dst_users if u["id"] in holders and u["id"] not in assignable)
    pool = [u for u in w.source_users()[10:] if internal(u) and u.get("mail") and u.get("accountEnabled")
            and u.get("department") not in ("Legal", "Treasury")]
    cast = {"cyrillic": pool[0], "exact": pool[1], "holder": pool[2], "treasury": pool[3]}
    w.patch_source(cast["cyrillic"]["id"], {"displayName": LOOKALIKE})
    w.patch_source(cast["exact"]["id"], {"displayName": CEO.upper()})
    w.patch_source(cast["holder"]["id"], {"displayName": holder["displayName"]})
    w.patch_source(cast["treasury"]["id"], {"department": "Treasury"})
    cast["holder_name"] = holder
    return cast


def attackers(world: Guarded) -> set[str]:
    return {world.cast[k]["id"] for k in ("cyrillic", "exact", "holder", "treasury")}


def test_unlisted_source_writes_nothing(world):
    before = world.target_state()
    res = world.cycle()
    checks = world.checks(res["pair"])
    src = checks["sources"]
    assert not src.passed and src.severity == dg.AssetCheckSeverity.ERROR
    assert "allowed_sources" in src.description and f"'{SRC}'" in src.description and f"'{DST}'" in src.description
    assert "approve_with" not in src.metadata  # consent can't be approved away
    assert world.target_state() == before
    assert world.log("status <> 'Skipped'") == []
    world.first_fp = world.fingerprint()
    world.write_policy([SRC])


def test_flood_into_a_tiny_target_is_blocked_and_nothing_written(world):
    before = world.target_state()
    res = world.cycle()
    vol = world.checks(res["pair"])["volume"]
    creates = res["plan"]["create"]
    assert creates > 100
    assert not vol.passed and vol.severity == dg.AssetCheckSeverity.ERROR
    # The library's defaults: 10 % of an 8-user target, but never below pct_floor=50. Users a per-user
    # guardrail holds are never written, so the cap counts the others.
    with store.connect(world.db) as con:
        held = con.execute("SELECT count(DISTINCT p.source_object_id) FROM plan p JOIN plan_exclusions e "
                           "USING (pair_key, change_id) WHERE p.pair_key = ? AND p.action = 'create'", [PAIR]).fetchone()[0]
    counted = creates - held
    assert held >= 3  # the look-alikes and the Treasury user
    assert f"max_creates_pct_of_target=10% of {len(before)} target users (at least pct_floor=50): {counted} > 50" \
        in vol.description
    assert vol.metadata["count"].value == counted and vol.metadata["limit"].value == 50
    fp = world.fingerprint()
    assert fp == world.first_fp  # re-planning the same content gives the same fingerprint
    assert vol.metadata["plan_fingerprint"].value == fp
    # Paste-safe and complete: the pair quoted (`>` is a shell redirect) and the topology in use.
    assert vol.metadata["approve_with"].value == (
        f"xts approve --config {world.cfg.resolve()} --pair '{SHOWN}' --plan {fp} --reason ...")
    assert fp in vol.description
    assert vol.description.count("xts approve") == 1, vol.description  # said once
    # An expected outcome, not an error: the run succeeds, no step fails, the guarded plan yields no output,
    # so Dagster skips apply (the UI shows it skipped, not a red step with a stack trace).
    run = res["pair"]
    assert run.success
    assert not [e for e in run.all_events if e.is_step_failure]
    assert "applied_changes" in {e.step_key for e in run.all_events if e.event_type_value == "STEP_SKIPPED"}
    assert not run.asset_materializations_for_node("applied_changes")
    assert world.target_state() == before
    log = world.log()
    assert log and {s for _, s, *_ in log} == {"Skipped"}
    assert all(r.startswith("blocked: guardrail_volume") or r.startswith("held by") for *_, r in log)
    with store.connect(world.db) as con:  # the kind of hold is a column, not a prefix of the reason
        holds = dict(con.execute("SELECT hold, count(*) FROM provisioning_log WHERE pair_key = ? AND cycle_id = "
                                 "(SELECT cycle_id FROM plan_meta WHERE pair_key = ?) GROUP BY 1",
                                 [PAIR, PAIR]).fetchall())
    assert set(holds) == {"blocked", "held"} and holds["held"] >= held
    world.flood = res




def test_ceo_lookalikes_are_held_per_user(world):
    imp = world.checks(world.flood["pair"])["impersonation"]  # per-user checks run on every plan
    assert not imp.passed and imp.severity == dg.AssetCheckSeverity.WARN
    offenders = {o["source_object_id"]: o for o in imp.metadata["offenders"].value}
    cyr = offenders[world.cast["cyrillic"]["id"]]
    assert cyr["protected"] == CEO and cyr["protected_because"] == "CEO" and "Cyrillic" in cyr["how"]
    assert offenders[world.cast["exact"]["id"]]["protected"] == CEO
    holder = offenders[world.cast["holder"]["id"]]
    assert holder["protected_because"].startswith("holder of directory role")
    assert "resemble a protected identity" in imp.description


def test_department_that_grants_a_privileged_group_is_held(world):
    priv = world.checks(world.flood["pair"])["privilege"]
    assert not priv.passed and priv.severity == dg.AssetCheckSeverity.WARN
    assert "department='Treasury'" in priv.description and "Privileged Finance Admins" in priv.description
    assert 'user.department -eq "Treasury"' in priv.description and "role-assignable" in priv.description
    offenders = {o["source_object_id"] for o in priv.metadata["offenders"].value}
    assert world.cast["treasury"]["id"] in offenders


def test_changed_plan_voids_the_approval_and_cli_prints_the_new_fingerprint(world, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XTS_APPROVER", "ciso")
    assert approve_command(world.cli_args(plan=world.first_fp, reason="merger day one, CHG-1")) == 0
    assert f"approved plan {world.first_fp} of {SHOWN} by ciso" in capsys.readouterr().out
    # The source changes one user: a different plan, which nobody approved.
    other = next(u for u in world.source_users()[20:] if internal(u) and u.get("department") != "Legal")
    world.patch_source(other["id"], {"jobTitle": "Changed After Approval"})
    before = world.target_state()
    from assets.sync_cli import sync_command

    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    rc = sync_command(argparse.Namespace(config=str(world.cfg), sandbox=str(world.sandbox.state_dir),
                                         pairs=SHOWN, dry_run=False))
    captured = capsys.readouterr()
    out = captured.out
    fp = world.fingerprint()
    assert rc == 1 and fp != world.first_fp
    assert "blocked" in out and "guardrail_volume" in out and "approved by" not in out
    assert f"plan fingerprint {fp}; to approve it: xts approve --config " in out
    assert out.count("xts approve") == 1, out  # the message and the command, the command once
    assert "Traceback" not in captured.out + captured.err  # a block is an expected outcome, not a crash
    assert f" --pair '{SHOWN}' --plan {fp} --reason ..." in out
    assert world.target_state() == before
    with store.connect(world.db) as con:
        assert find_approval(con, PAIR, world.first_fp) is not None and find_approval(con, PAIR, fp) is None
    world.second_fp = fp


def test_approved_plan_applies_on_the_next_run_without_the_held_users(world, monkeypatch, capsys):
    monkeypatch.setenv("XTS_APPROVER", "ciso")
    assert approve_command(world.cli_args(plan=world.second_fp, reason="merger day one, CHG-2")) == 0
    assert "will apply it" in capsys.readouterr().out
    res = world.cycle()
    checks = world.checks(res["pair"])
    assert world.fingerprint() == world.second_fp
    assert checks["volume"].passed and checks["volume"].metadata["approval"].value["approved_by"] == "ciso"
    assert res["pair"].success and res["log"]["create/Success"] > 100
    synced = linked_ids(world)
    held = attackers(world)
    assert not held & set(synced)  # an approval never re-admits a look-alike or a privilege grab
    names = {u["displayName"] for u in world.target_users()}
    assert LOOKALIKE not in names and CEO.upper() not in names
    assert not [u for u in world.target_users() if u.get("department") == "Treasury" and u["id"] in synced.values()]
    reasons = {sid: r for _, s, _, sid, r in world.log("status = 'Skipped'")}
    assert reasons[world.cast["cyrillic"]["id"]].startswith("held by impersonation: displayName")
    assert reasons[world.cast["treasury"]["id"]].startswith("held by privilege: would join privileged group "
                                                           "'Privileged Finance Admins'")


def test_mass_deletion_is_staged_not_deleted(world):
    synced = linked_ids(world)
    victims = [u for u in world.source_users() if u["id"] in synced][: DELETE_THRESHOLD + 2]
    world.victims = {u["id"]: u.get("department") for u in victims}
    for u in victims:
        world.patch_source(u["id"], {"department": "Legal"})  # out of scope: Entra would delete them
    before = world.target_state()
    res = world.cycle()
    dele = world.checks(res["pair"])["deletions"]
    assert res["plan"]["delete"] == len(victims)
    assert not dele.passed and dele.severity == dg.AssetCheckSeverity.ERROR
    assert f"deletions.threshold={DELETE_THRESHOLD} (disables + deletes): {len(victims)} > {DELETE_THRESHOLD}" \
        in dele.description
    assert world.target_state() == before
    staged = world.log("action = 'StagedDelete'")
    assert len(staged) == len(victims) and {(s, op) for _, s, op, *_ in staged} == {("Skipped", "delete")}
    # Materializing applied_changes on its own still deletes nothing, and logs the same held entries once.
    assert world.materialize([APPLIED], PAIR).success
    assert world.target_state() == before
    assert len(world.log("action = 'StagedDelete'")) == len(victims)
    # A newer plan that the guardrails have not judged yet: applied_changes on its own refuses it too.
    assert world.materialize([PLAN], PAIR).success
    res = world.materialize([APPLIED], PAIR)
    assert res.success and world.target_state() == before
    refused = res.asset_materializations_for_node("applied_changes")[0].metadata["blocked_reason"].value
    assert "the guardrails have not judged the current plan" in refused
    for uid, dept in world.victims.items():
        world.patch_source(uid, {"department": dept})


def test_loop_a_source_guest_is_never_synced(world):
    guests = [u for u in world.source_users() if not internal(u)]
    assert guests
    assert not {g["id"] for g in guests} & set(linked_ids(world))
    # Defence in depth: a user who turns B2B in the source after the desired state was computed is still
    # caught on the plan by the loop guard.
    legal = next(u for u in world.source_users() if internal(u) and u.get("department") == "Legal"
                 and u.get("mail") and u["id"] not in world.victims)
    world.patch_source(legal["id"], {"department": "Sales"})
    assert world.materialize([RAW, STAGED], SRC).success and world.materialize([SNAPSHOT], DST).success
    assert world.materialize([DESIRED], PAIR).success
    world.sandbox.admin("PATCH", f"/tenants/{SRC}/users/{legal['id']}",
                        json={"userType": "Guest", "creationType": "Invitation"})
    assert world.materialize([RAW, STAGED], SRC).success
    before = world.target_state()
    res = world.materialize([PLAN, GUARDED, APPLIED], PAIR)
    loop = world.checks(res)["loop_guard"]
    assert not loop.passed and "B2B in the source" in loop.description
    assert legal["userPrincipalName"] in loop.description
    assert legal["id"] not in linked_ids(world) and world.target_state() == before
    assert world.log("source_object_id = ?", [legal["id"]])[0][4].startswith("held by loop_guard")


def test_quarantine_engages_is_skipped_by_the_schedule_and_released(world, capsys):
    granted = next(t for t in world.sandbox.info["tenants"] if t["name"] == DST)["permissions"]
    read_only = [p for p in granted if p not in ("User.Invite.All", "User.ReadWrite.All")]
    synced = linked_ids(world)
    movers = [u for u in world.source_users() if u["id"] in synced][:3]
    for u in movers:
        world.patch_source(u["id"], {"jobTitle": "Quarantine Probe"})
    world.sandbox.admin("PUT", f"/tenants/{DST}/permissions", json={"permissions": read_only})
    try:
        res = world.cycle()
        assert res["log"]["update/Failure"] == 3 and not [k for k in res["log"] if k.endswith("/Success")]
        with store.connect(world.db) as con:
            state = quarantine.get_state(con, PAIR)
        assert state is not None and state.active and "credentials failed" in state.reason
        assert state.next_retry_at - state.since == quarantine.QuarantinePolicy().delay(0)  # 6 h, as Entra
        mat = res["pair"].asset_materializations_for_node("applied_changes")[0]
        assert release_line(world) in mat.metadata["quarantine"].value

        # The next scheduled cycle: its source and target runs succeed, the sensor skips the pair.
        tags = {CYCLE_TAG: "20261127T1200"}
        assert world.materialize([RAW, STAGED], SRC, tags={**tags, KIND_TAG: "source"}).success
        assert world.materialize([SNAPSHOT], DST, tags={**tags, KIND_TAG: "target"}).success
        sensor = world.defs.resolve_sensor_def("pair_cycle_sensor")
        tick = sensor.evaluate_tick(dg.build_sensor_context(instance=world.instance, definitions=world.defs))
        assert not tick.run_requests
        assert "quarantined since" in tick.skip_message and "next retry at" in tick.skip_message
        assert release_line(world) in tick.skip_message

        # Run by hand anyway: the quarantine check fails at ERROR and nothing is written.
        before = world.target_state()
        res = world.materialize([DESIRED, PLAN, GUARDED, APPLIED], PAIR)
        q = world.checks(res)["quarantine"]
        assert not q.passed and q.severity == dg.AssetCheckSeverity.ERROR and "quarantined" in q.description
        assert world.target_state() == before
    finally:
        world.sandbox.admin("PUT", f"/tenants/{DST}/permissions", json={"permissions": granted})
    assert release_command(world.cli_args()) == 0
    assert f"released {SHOWN} from quarantine" in capsys.readouterr().out
    tick = world.defs.resolve_sensor_def("pair_cycle_sensor").evaluate_tick(
        dg.build_sensor_context(instance=world.instance, definitions=world.defs))
    assert [r.partition_key for r in tick.run_requests] == [PAIR]
    res = world.cycle()
    assert res["log"]["update/Success"] == 3 and not [k for k in res["log"] if k.endswith("/Failure")]
    assert {u["jobTitle"] for u in world.target_users() if u["id"] in {synced[m["id"]] for m in movers}} == {
        "Quarantine Probe"}


def test_refused_credentials_quarantine_the_pair_at_once(world, capsys):
    """Entra quarantines a job whose credentials fail; so do we, on the first apply that meets them."""
    synced = linked_ids(world)
    mover = next(u for u in world.source_users() if u["id"] in synced)
    world.patch_source(mover["id"], {"jobTitle": "After Secret Rotation"})
    assert world.cycle(dry_run=True)["plan"]["update"] == 1  # plan and checks; nothing written
    # The target's admin rotates the app's secret in the sandbox; the pipeline still holds the old one.
    configured = world.sandbox.tenant(DST)["client_secret"]
    rotated = world.sandbox.admin("PUT", f"/tenants/{DST}/secret", json={"rotate": True})["client_secret"]
    assert rotated != configured
    before = world.target_state()
    try:
        res = world.materialize([APPLIED], PAIR)
    finally:
        world.sandbox.admin("PUT", f"/tenants/{DST}/secret", json={"secret": configured})
    assert not res.success
    failure = next(e for e in res.all_events if e.is_step_failure).step_failure_data
    text = failure.user_failure_data.description if failure.user_failure_data else failure.error.message
    assert f"pair {SHOWN} is quarantined" in text and "'dst'" in text and release_line(world) in text
    assert world.target_state() == before
    with store.connect(world.db) as con:
        state = quarantine.get_state(con, PAIR)
    assert state.active and state.reason.startswith("credentials failed") and "AADSTS" in state.reason
    assert release_command(world.cli_args()) == 0
    capsys.readouterr()
    assert world.cycle()["log"]["update/Success"] == 1


def test_unreadable_role_holders_warn_instead_of_failing(world):
    """Without RoleManagement.Read.Directory the snapshot still works and says what is not protected."""
    granted = next(t for t in world.sandbox.info["tenants"] if t["name"] == DST)["permissions"]
    world.sandbox.admin("PUT", f"/tenants/{DST}/permissions",
                        json={"permissions": [p for p in granted if p != "RoleManagement.Read.Directory"]})
    try:
        snap = world.materialize([SNAPSHOT], DST)
        assert snap.success
        warning = snap.asset_materializations_for_node("target_snapshot")[0].metadata["warnings"].value
        assert "WARN: target dst: directory role holders were not read" in warning
        assert "RoleManagement.Read.Directory" in warning
        imp = world.checks(world.materialize([DESIRED, PLAN, GUARDED], PAIR))["impersonation"]
        assert any("RoleManagement.Read.Directory" in w for w in imp.metadata["warnings"].value)
        assert "WARN: target dst: directory role holders were not read" in imp.description
    finally:
        world.sandbox.admin("PUT", f"/tenants/{DST}/permissions", json={"permissions": granted})
    assert world.materialize([SNAPSHOT], DST).success
    with store.connect(world.db) as con:
        assert con.execute("SELECT count(*) FROM target_notes WHERE tenant = ?", [DST]).fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM target_role_members WHERE tenant = ?", [DST]).fetchone()[0] > 0
