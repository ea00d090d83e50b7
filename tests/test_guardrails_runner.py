"""All guardrails together over one pair's plan: what is kept, what is skipped and why, approvals."""

from __future__ import annotations

import json

import duckdb

from xts_pipeline.guardrails.approvals import find_approval, record_approval
from xts_pipeline.guardrails.policy import InboundPolicy
from xts_pipeline.guardrails.runner import PairInputs, run_guardrails
from xts_pipeline.vocabulary import plan_fingerprint

POLICY = InboundPolicy.model_validate({
    "allowed_sources": ["contoso"],
    "impersonation": {"protected": [{"value": "Megan Bowen", "label": "CEO"}]},
    "attribute_policy": {"jobTitle": {"deny_patterns": ["(?i)admin"]}},
})
PARTNER = {"userSyncInbound": {"isSyncAllowed": True}}
TIER0 = {"id": "g1", "displayName": "Helpdesk Admins", "groupTypes": ["DynamicMembership"],
         "membershipRule": 'user.department -eq "IT Operations"', "isAssignableToRole": True}


def row(sid: str, action: str = "create", **desired) -> dict:
    # `desired` as DuckDB hands JSON columns back: text.
    return {"pair_key": "contoso__fabrikam", "cycle_id": "c1", "change_id": f"c1-{sid}", "source_object_id": sid,
            "target_user_id": None, "action": action, "desired": json.dumps(desired), "changes": "[]"}


def inputs(plan: list[dict], **kw) -> PairInputs:
    base = dict(pair_key="contoso__fabrikam", source="contoso", target="fabrikam", plan_rows=plan,
                source_users=[{"id": r["source_object_id"], "userType": "Member"} for r in plan],
                target_users=[{"id": f"t{i}"} for i in range(500)], target_groups=[TIER0], partner_policy=PARTNER)
    return PairInputs(**{**base, **kw})


def test_per_user_violations_drop_only_those_users() -> None:
    plan = [row("ok1", displayName="Alex Wilber"), row("ok2", displayName="Lee Gu"),
            row("ceo", displayName="M\u0435gan Bowen"), row("priv", displayName="Eve", department="IT Operations"),
            row("title", displayName="Mallory", jobTitle="Global Admin")]
    source_users = [{"id": "ok1"}, {"id": "ok2"}, {"id": "ceo"}, {"id": "priv"}, {"id": "title"},
                    {"id": "guest", "userType": "Guest"}]
    report = run_guardrails(inputs(plan, source_users=source_users), POLICY)
    assert not report.blocked
    assert report.excluded_user_ids == {"ceo", "priv", "title", "guest"}
    assert [r["source_object_id"] for r in report.kept_rows()] == ["ok1", "ok2"]
    why = {e["source_object_id"]: (e["check_name"], e["reason"]) for e in report.exclusions()}
    assert why["ceo"][0] == "impersonation" and "Cyrillic" in why["ceo"][1]
    assert why["priv"][0] == "privilege" and "Helpdesk Admins" in why["priv"][1]
    assert why["title"][0] == "attribute_policy" and "(?i)admin" in why["title"][1]
    assert {e["change_id"] for e in report.exclusions()} == {"c1-ceo", "c1-priv", "c1-title"}
    by_name = {r.name: r for r in report.results}
    assert set(by_name) == {"sources", "loop_guard", "volume", "deletions", "impersonation", "privilege",
                            "attribute_policy", "attribute_validity"}
    for r in report.results:
        json.dumps(r.to_metadata())  # JSON-able for Dagster


def test_block_cycle_policy_blocks_whole_pair() -> None:
    policy = POLICY.model_copy(update={"on_violation": POLICY.on_violation.model_copy(
        update={"impersonation": "block_cycle"})})
    report = run_guardrails(inputs([row("ok"), row("ceo", displayName="Megan Bowen")]), policy)
    assert report.blocked and report.kept_rows() == []


def test_flood_blocked_then_approved_then_changed() -> None:
    con = duckdb.connect()
    # 8,000 into 500 keeps the test quick; 80,000 is covered in test_guardrails_volume.
    plan = [row(f"u{i}", displayName=f"Flood {i}") for i in range(8_000)]
    report = run_guardrails(inputs(plan), POLICY)
    assert report.blocked and report.kept_rows() == []
    volume = next(r for r in report.results if r.name == "volume")
    assert (volume.count, volume.limit) == (8_000, 50)
    record_approval(con, "contoso__fabrikam", report.fingerprint, "initial load of the merger", approved_by="ops")
    again = run_guardrails(inputs(plan), POLICY, approval=find_approval(con, "contoso__fabrikam",
                                                                        plan_fingerprint(plan)))
    assert not again.blocked and len(again.kept_rows()) == 8_000
    assert next(r for r in again.results if r.name == "volume").to_metadata()["approval"]["approved_by"] == "ops"
    changed = [*plan, row("late", displayName="Late Joiner")]
    assert find_approval(con, "contoso__fabrikam", plan_fingerprint(changed)) is None


def test_unconsented_source_blocks_even_with_approval() -> None:
    report = run_guardrails(inputs([row("a")], partner_policy=None), POLICY,
                            approval={"approved_by": "ops", "approved_at": "now", "reason": "x"})
    assert report.blocked


def test_approval_does_not_admit_a_lookalike_hidden_in_a_flood() -> None:
    plan = [row(f"u{i}", displayName=f"Flood {i}") for i in range(1000)] + [row("ceo", displayName="MEGAN B0WEN")]
    first = run_guardrails(inputs(plan), POLICY)
    assert first.blocked
    approved = run_guardrails(inputs(plan), POLICY, approval={"approved_by": "ops", "approved_at": "t", "reason": "x"})
    assert not approved.blocked
    assert approved.excluded_user_ids == {"ceo"} and len(approved.kept_rows()) == 1000


def test_approving_a_block_cycle_plan_runs_the_cycle_but_keeps_the_offenders_out() -> None:
    strict = POLICY.model_copy(update={"on_violation": POLICY.on_violation.model_copy(
        update={"impersonation": "block_cycle"})})
    plan = [row("ok1", displayName="Alex Wilber"), row("ceo", displayName="M\u0435gan Bowen")]
    blocked = run_guardrails(inputs(plan), strict)
    assert blocked.blocked and blocked.kept_rows() == []
    approval = {"approved_by": "ciso", "approved_at": "2026-11-27 12:00", "reason": "merger day"}
    approved = run_guardrails(inputs(plan), strict, approval)
    imp = next(r for r in approved.results if r.name == "impersonation")
    assert not approved.blocked and not imp.passed and imp.approval is not None
    assert "these users stay excluded" in imp.message and imp.to_metadata()["approval"]["approved_by"] == "ciso"
    assert [r["source_object_id"] for r in approved.kept_rows()] == ["ok1"]


def test_snapshot_notes_show_on_the_impersonation_check() -> None:
    note = "target fabrikam: directory role holders were not read ... RoleManagement.Read.Directory"
    report = run_guardrails(inputs([row("ok1", displayName="Alex Wilber")], notes=[note]), POLICY)
    imp = next(r for r in report.results if r.name == "impersonation")
    assert imp.passed and imp.to_metadata()["warnings"] == [note]
    off = POLICY.model_copy(update={"impersonation": POLICY.impersonation.model_copy(
        update={"include_directory_role_holders": False})})
    imp = next(r for r in run_guardrails(inputs([row("ok1")], notes=[note]), off).results if r.name == "impersonation")
    assert "warnings" not in imp.to_metadata()  # role holders aren't wanted: nothing is missing


def test_a_held_user_is_still_disabled() -> None:
    """A disable that writes only accountEnabled=false applies even when the user's other row is held."""
    from xts_pipeline.guardrails.runner import PairInputs, run_guardrails

    rows = [
        {"pair_key": "p", "cycle_id": "c", "change_id": "d1", "source_object_id": "s1", "target_user_id": "t1",
         "action": "disable", "desired": {"accountEnabled": False},
         "changes": [{"property": "accountEnabled", "old": True, "new": False}]},
        {"pair_key": "p", "cycle_id": "c", "change_id": "u1", "source_object_id": "s1", "target_user_id": "t1",
         "action": "update", "desired": {"city": "x" * 500}, "changes": [{"property": "city", "old": "a", "new": "x" * 500}]},
    ]
    report = run_guardrails(PairInputs("p", "contoso", "fabrikam", rows,
                                       partner_policy={"userSyncInbound": {"isSyncAllowed": True}}), POLICY)
    assert "s1" in report.excluded_user_ids
    assert [r["change_id"] for r in report.kept_rows()] == ["d1"]
    assert [e["change_id"] for e in report.exclusions()] == ["u1"]
