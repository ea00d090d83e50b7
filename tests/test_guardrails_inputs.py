"""Guardrails over the real DuckDB staging schema (store.py): read a pair's inputs, write exclusions."""

from __future__ import annotations

import json

from xts_pipeline import store
from xts_pipeline.guardrails.inputs import load_pair_inputs, record_exclusions
from xts_pipeline.guardrails.policy import InboundPolicy
from xts_pipeline.guardrails.runner import run_guardrails

PAIR = "contoso__fabrikam"
RULE = 'user.department -eq "IT Operations"'


def seed(con) -> None:
    con.execute("INSERT INTO target_users (tenant, id, user_principal_name, mail, display_name, attrs) VALUES "
                "('fabrikam', 'adm', 'AdeleV@fabrikam.com', 'AdeleV@fabrikam.com', 'Adele Vance', "
                "'{\"mailNickname\": \"AdeleV\"}'), ('fabrikam', 'u2', 'x@fabrikam.com', NULL, 'X', NULL)")
    con.execute("INSERT INTO target_groups (tenant, id, display_name, group_types, membership_rule, "
                "is_assignable_to_role) VALUES ('fabrikam', 'g1', 'Helpdesk Admins', '[\"DynamicMembership\"]', ?, true),"
                "('fabrikam', 'g2', 'Tier0', '[]', NULL, true)", [RULE])
    con.execute("INSERT INTO target_group_members VALUES ('fabrikam', 'g2', 'adm')")
    con.execute("INSERT INTO target_policy (tenant, source_tenant, is_sync_allowed, policy) VALUES "
                "('fabrikam', 'contoso', true, '{}')")
    plan = [("ok", {"displayName": "Alex Wilber"}), ("adele", {"displayName": "Adele  Vance"}),
            ("priv", {"displayName": "Eve", "department": "IT Operations"}), ("guest", {"displayName": "G"})]
    for sid, desired in plan:
        con.execute("INSERT INTO plan (pair_key, cycle_id, change_id, source_object_id, action, changes, desired) "
                    "VALUES (?, 'run1', ?, ?, 'create', '[]', ?)", [PAIR, f"ch-{sid}", sid, json.dumps(desired)])
        con.execute("INSERT INTO staged_users (tenant, id, user_principal_name, user_type, creation_type) VALUES "
                    "('contoso', ?, ?, ?, NULL)", [sid, f"{sid}@contoso.com", "Guest" if sid == "guest" else "Member"])
    con.execute("INSERT INTO plan_exclusions VALUES (?, 'run1', 'ch-ok', 'other_check', 'kept')", [PAIR])


def test_load_run_and_record(tmp_path) -> None:
    db = tmp_path / "xts.duckdb"
    with store.connect(db) as con:
        seed(con)
        inputs = load_pair_inputs(con, PAIR, "contoso", "fabrikam")
    assert inputs.target_size == 2 and inputs.existing_from_source == 0
    assert inputs.partner_policy["userSyncInbound"]["isSyncAllowed"] is True
    assert inputs.role_assignable_members == {"adm": "Tier0"}
    report = run_guardrails(inputs, InboundPolicy(allowed_sources=["contoso"]))
    assert not report.blocked
    assert report.excluded_user_ids == {"adele", "priv", "guest"}
    with store.connect(db) as con:
        assert record_exclusions(con, report) == 3
        assert record_exclusions(con, report) == 3  # replaces, does not duplicate
        rows = con.execute("SELECT change_id, check_name, reason FROM plan_exclusions WHERE pair_key = ? "
                           "ORDER BY change_id", [PAIR]).fetchall()
    by_change = {r[0]: (r[1], r[2]) for r in rows}
    assert by_change["ch-adele"][0] == "impersonation" and "Tier0" in by_change["ch-adele"][1]
    assert by_change["ch-priv"][0] == "privilege" and "Helpdesk Admins" in by_change["ch-priv"][1]
    assert by_change["ch-guest"][0] == "loop_guard"
    assert by_change["ch-ok"] == ("other_check", "kept")  # other checks' exclusions are left alone


def test_missing_partner_policy_blocks(tmp_path) -> None:
    with store.connect(tmp_path / "x.duckdb") as con:
        inputs = load_pair_inputs(con, PAIR, "contoso", "fabrikam")
    assert inputs.partner_policy is None and inputs.plan_rows == []
    assert run_guardrails(inputs, InboundPolicy(allowed_sources=["contoso"])).blocked


def test_inputs_carry_the_current_record_role_groups_and_target_volume(tmp_path) -> None:
    """The post-write record's base, roles held through a group, and what the target took from every pair."""
    from datetime import UTC, datetime

    db = tmp_path / "xts.duckdb"
    with store.connect(db) as con:
        seed(con)
        con.execute("INSERT INTO target_users (tenant, id, display_name, user_type, creation_type, attrs) VALUES "
                    "('fabrikam', 't-upd', 'Old Name', 'Guest', 'Invitation', '{\"jobTitle\": \"Intern\"}'),"
                    "('fabrikam', 'gm', 'Grace Hopper', 'Member', NULL, '{}')")
        con.execute("INSERT INTO plan (pair_key, cycle_id, change_id, source_object_id, target_user_id, action, "
                    "changes, desired) VALUES (?, 'run1', 'ch-upd', 'upd', 't-upd', 'update', "
                    "'[{\"property\": \"city\", \"old\": null, \"new\": \"Oslo\"}]', '{\"city\": \"Oslo\"}'),"
                    "(?, 'run1', 'ch-noop', 'noop', 't-upd', 'update', '[]', '{}')", [PAIR, PAIR])
        con.execute("INSERT INTO target_role_members VALUES ('fabrikam', 'r1', 'Global Administrator', 'grp')")
        con.execute("INSERT INTO target_group_members VALUES ('fabrikam', 'grp', 'gm')")
        # another pair into the same target: 3 creates logged today, 2 planned and not yet applied
        now = datetime.now(UTC).replace(tzinfo=None)
        con.executemany("INSERT INTO provisioning_log (cycle_id, change_id, pair_key, logged_at, action, status, "
                        "operation, target_tenant) VALUES ('c0', ?, 'litware__fabrikam', ?, 'Create', 'Success', "
                        "'create', 'fabrikam')", [[f"l{i}", now] for i in range(3)])
        con.executemany("INSERT INTO plan (pair_key, cycle_id, change_id, source_object_id, action, changes, desired) "
                        "VALUES ('litware__fabrikam', 'c1', ?, ?, 'create', '[]', '{}')", [[f"p{i}", f"p{i}"] for i in range(2)])
        inputs = load_pair_inputs(con, PAIR, "contoso", "fabrikam")
    by_sid = {r["source_object_id"]: r for r in inputs.plan_rows}
    assert "noop" not in by_sid  # writes nothing: not an incoming row
    assert json.loads(by_sid["upd"]["current"])["jobTitle"] == "Intern"
    assert "Global Administrator" in inputs.role_holders["gm"]
    vol = inputs.target_volume
    assert (vol.window_creates, vol.pending_other) == (3, 2)
    assert vol.external_users == 1 and vol.internal_members == 3


def test_whole_record_rows_come_without_changes_when_the_plan_fingerprint_is_stored(tmp_path) -> None:
    """With plan_meta's fingerprint, a create's changes are not read (no guardrail reads them): the stored
    fingerprint stands for the plan, rows keep the plan's order, and every verdict is the one of full rows."""
    from xts_pipeline.vocabulary import plan_fingerprint

    db = tmp_path / "xts.duckdb"
    with store.connect(db) as con:
        seed(con)
        con.execute("INSERT INTO target_users (tenant, id, display_name, attrs) VALUES "
                    "('fabrikam', 't-upd', 'Old Name', '{\"jobTitle\": \"Intern\"}')")
        for i in range(3):  # updates between the creates
            con.execute("INSERT INTO plan (pair_key, cycle_id, change_id, source_object_id, target_user_id, action, "
                        "changes, desired) VALUES (?, 'run1', ?, ?, 't-upd', 'update', ?, ?)",
                        [PAIR, f"ch-u{i}", f"u{i}", json.dumps([{"property": "department", "old": None,
                                                                  "new": "IT Operations"}]),
                         json.dumps({"department": "IT Operations"})])
            con.execute("INSERT INTO plan (pair_key, cycle_id, change_id, source_object_id, action, changes, desired) "
                        "VALUES (?, 'run1', ?, ?, 'create', ?, ?)",
                        [PAIR, f"ch-c{i}", f"c{i}", json.dumps([{"property": "displayName", "old": None,
                                                                  "new": f"New {i}"}]),
                         json.dumps({"displayName": f"New {i}"})])
        full = load_pair_inputs(con, PAIR, "contoso", "fabrikam")  # no stored fingerprint: every row whole
        order = [r[0] for r in con.execute(
            "SELECT change_id FROM plan WHERE pair_key = ? ORDER BY rowid", [PAIR]).fetchall()]
        fingerprint = plan_fingerprint(full.plan_rows)
        con.execute("INSERT INTO plan_meta (pair_key, cycle_id, fingerprint) VALUES (?, 'run1', ?)",
                    [PAIR, fingerprint])
        lean = load_pair_inputs(con, PAIR, "contoso", "fabrikam")
    assert full.fingerprint is None and lean.fingerprint == fingerprint
    assert all(r["changes"] is not None for r in full.plan_rows)
    assert [r["change_id"] for r in lean.plan_rows] == [r["change_id"] for r in full.plan_rows] == order
    for a, b in zip(full.plan_rows, lean.plan_rows, strict=True):
        whole = a["action"] == "create"
        assert b["changes"] is None if whole else b["changes"] == a["changes"]
        assert {k: v for k, v in a.items() if k != "changes"} == {k: v for k, v in b.items() if k != "changes"}
    policy = InboundPolicy(allowed_sources=["contoso"])
    want, got = run_guardrails(full, policy), run_guardrails(lean, policy)
    assert got.fingerprint == want.fingerprint == fingerprint
    assert [(r.name, r.passed, sorted(r.blocked_user_ids)) for r in got.results] == \
        [(r.name, r.passed, sorted(r.blocked_user_ids)) for r in want.results]
    assert {"u0", "u1", "u2"} <= got.excluded_user_ids  # the updates' department joins the privileged group
