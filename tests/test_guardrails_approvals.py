"""Plan fingerprints, approvals in DuckDB, and quarantine with Entra's back-off."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xts_pipeline.guardrails import quarantine as q
from xts_pipeline.guardrails.approvals import find_approval, record_approval
from xts_pipeline.guardrails.policy import QuarantinePolicy
from xts_pipeline.guardrails.volume import check_deletions
from xts_pipeline.vocabulary import plan_fingerprint


def row(i: int, action: str = "create", cycle: str = "c1", **desired) -> dict:
    return {"pair_key": "contoso__fabrikam", "cycle_id": cycle, "change_id": f"{cycle}-{i}",
            "source_tenant_id": "tid", "source_object_id": f"s{i}", "target_user_id": None, "action": action,
            "changes": [{"property": "displayName", "old": None, "new": f"User {i}"}],
            "desired": {"displayName": f"User {i}", **desired}, "reason": f"planned at {cycle}"}


PLAN = [row(i) for i in range(5)]


def test_fingerprint_ignores_cycle_change_ids_reason_and_order() -> None:
    other_cycle = [row(i, cycle="c2") for i in reversed(range(5))]
    assert plan_fingerprint(PLAN) == plan_fingerprint(other_cycle)
    assert len(plan_fingerprint(PLAN)) == 32


def test_fingerprint_changes_with_content() -> None:
    base = plan_fingerprint(PLAN)
    assert plan_fingerprint(PLAN[:-1]) != base
    assert plan_fingerprint([*PLAN[:-1], row(4, jobTitle="CEO")]) != base
    assert plan_fingerprint([*PLAN[:-1], row(4, action="update")]) != base


ROWS = st.lists(st.builds(lambda i, a, t: row(i, action=a, title=t), st.integers(0, 50),
                          st.sampled_from(["create", "update", "delete", "disable"]), st.text(max_size=5)),
                min_size=1, max_size=15)


@settings(max_examples=150, deadline=None)
@given(ROWS, st.randoms())
def test_fingerprint_is_order_independent(rows: list[dict], rnd: random.Random) -> None:
    shuffled = rows[:]
    rnd.shuffle(shuffled)
    assert plan_fingerprint(shuffled) == plan_fingerprint(rows)


@settings(max_examples=150, deadline=None)
@given(ROWS, st.data())
def test_fingerprint_changes_when_any_row_changes(rows: list[dict], data: st.DataObject) -> None:
    k = data.draw(st.integers(0, len(rows) - 1))
    changed = [dict(r) for r in rows]
    changed[k] = {**changed[k], "desired": {**changed[k]["desired"], "title": changed[k]["desired"]["title"] + "!"}}
    assert plan_fingerprint(changed) != plan_fingerprint(rows)


def test_blocked_then_approved_then_changed_plan_voids_approval() -> None:
    con = duckdb.connect()
    deletes = [row(i, action="delete") for i in range(600)]
    from xts_pipeline.guardrails.policy import InboundPolicy

    result = check_deletions(deletes, InboundPolicy(), existing_from_source=1000, pair="contoso->fabrikam")
    assert result.blocking
    fp = plan_fingerprint(deletes)
    assert find_approval(con, "contoso__fabrikam", fp) is None
    rec = record_approval(con, "contoso__fabrikam", fp, "merger cleanup, ticket 42", approved_by="alice",
                          now=datetime(2026, 11, 27, 12, 0))
    assert rec["approved_by"] == "alice"
    found = find_approval(con, "contoso__fabrikam", plan_fingerprint(list(reversed(deletes))))
    assert found is not None and found["reason"] == "merger cleanup, ticket 42"
    approved = result.with_approval(found)
    assert approved.passed and not approved.blocking
    assert approved.to_metadata()["approval"]["approved_by"] == "alice"
    changed = [*deletes, row(999, action="delete")]
    assert find_approval(con, "contoso__fabrikam", plan_fingerprint(changed)) is None
    assert find_approval(con, "litware__fabrikam", fp) is None  # approvals are per pair


@pytest.mark.parametrize("fp,reason,needle", [("nothex", "ok", "32 hex"), ("a" * 32, "  ", "--reason")])
def test_record_approval_validates(fp: str, reason: str, needle: str) -> None:
    with pytest.raises(ValueError, match=needle) as err:
        record_approval(duckdb.connect(), "contoso__fabrikam", fp, reason, approved_by="bob")
    assert "contoso__fabrikam" in str(err.value)


T0 = datetime(2026, 11, 1, 0, 0)
ENTRA = QuarantinePolicy()


@pytest.mark.parametrize("events,failures,creds,quarantined", [
    (100_000, 4_999, False, False),  # under Entra's 5,000-failure minimum
    (10_000, 5_000, False, True),  # 50 % > 40 %
    (20_000, 5_000, False, False),  # 25 %
    (200_000, 40_001, False, True),  # > 40,000 failures at 20 %
    (10, 0, True, True),  # credentials failed
])
def test_entra_quarantine_thresholds(events: int, failures: int, creds: bool, quarantined: bool) -> None:
    assert (q.evaluate_quarantine(q.ApplyStats(events, failures, creds), ENTRA) is not None) is quarantined


def test_quarantine_engages_backs_off_and_releases() -> None:
    con = duckdb.connect()
    small = QuarantinePolicy(min_failures=5, failure_rate=0.4, max_failures=100)
    bad = q.ApplyStats(events=10, failures=8)
    state = q.after_apply(con, "contoso__fabrikam", bad, small, T0)
    assert state is not None and state.status == "quarantined" and state.next_retry_at == T0 + timedelta(hours=6)
    skip = q.is_skipped(con, "contoso__fabrikam", T0 + timedelta(hours=1))
    assert skip.skipped and "contoso->fabrikam" in skip.message and "`xts release --pair 'contoso->fabrikam'`" in skip.message
    mine = q.is_skipped(con, "contoso__fabrikam", T0 + timedelta(hours=1), config_args=["--config", "/t/my topo.yaml"])
    assert "`xts release --config '/t/my topo.yaml' --pair 'contoso->fabrikam'`" in mine.message  # complete, pastes
    assert not q.is_skipped(con, "contoso__fabrikam", T0 + timedelta(hours=6)).skipped  # the retry is due
    now, delays = T0 + timedelta(hours=6), []
    for _ in range(4):
        state = q.after_apply(con, "contoso__fabrikam", bad, small, now)
        delays.append(state.next_retry_at - now)
        now = state.next_retry_at
    # Entra: retries 6 h, 12 h and 24 h after the first failure, then every 24 h (measured from T0).
    assert delays == [timedelta(hours=h) for h in (6, 12, 24, 24)]
    assert now == T0 + timedelta(hours=72)
    released = q.release(con, "contoso__fabrikam", "alice", now)
    assert released is not None and released.released_by == "alice"
    assert not q.is_skipped(con, "contoso__fabrikam", now).skipped
    assert q.release(con, "contoso__fabrikam", "alice", now) is None  # nothing left to release


def test_good_retry_releases_and_four_weeks_disables() -> None:
    con = duckdb.connect()
    q.enter(con, "a__b", "credentials failed", ENTRA, T0)
    assert q.after_apply(con, "a__b", q.ApplyStats(100, 0), ENTRA, T0 + timedelta(hours=6)).status == "released"
    q.enter(con, "a__b", "credentials failed", ENTRA, T0)
    state = q.after_apply(con, "a__b", q.ApplyStats(1, 1, True), ENTRA, T0 + timedelta(days=28))
    assert state.status == "disabled"
    assert q.is_skipped(con, "a__b", T0 + timedelta(days=400)).skipped


def test_quarantine_table_from_store_schema_is_extended() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE quarantine (pair_key VARCHAR, since TIMESTAMP, reason VARCHAR, "
                "released_at TIMESTAMP, failures BIGINT)")
    q.enter(con, "a__b", "credentials failed", ENTRA, T0)
    assert q.get_state(con, "a__b").attempts == 0


def test_fingerprint_same_for_json_text_and_decoded_rows() -> None:
    import json

    as_text = [{**r, "desired": json.dumps(r["desired"]), "changes": json.dumps(r["changes"])} for r in PLAN]
    assert plan_fingerprint(as_text) == plan_fingerprint(PLAN)


def test_reference_failures_are_left_out_of_the_40_percent_and_40000_rules() -> None:
    """Entra: "Reference failures won't be counted as part of the 40% threshold or 40,000 threshold. For
    example, failure to update a manager or a group member is a reference failure."
    (application-provisioning-quarantine-status.md)"""
    assert q.evaluate_quarantine(q.ApplyStats(100_000, 45_000, reference_failures=10_000), ENTRA) is None
    assert q.evaluate_quarantine(q.ApplyStats(20_000, 9_000, reference_failures=5_000), ENTRA) is None
    assert q.evaluate_quarantine(q.ApplyStats(20_000, 9_000), ENTRA) is not None


def test_absolute_threshold_of_60000_counts_reference_failures() -> None:
    """Entra: "There's an absolute threshold of 60,000 failures that accounts for both reference and
    non-reference failures. For example, 40,000 users failed to be provisioned and 21,000 manager updates
    failed. The total is 61,000 failures and exceeds the 60,000 limit." (application-provisioning-quarantine-status.md)"""
    stats = q.ApplyStats(10_000_000, 61_000, reference_failures=21_000)
    assert "60000" in (q.evaluate_quarantine(stats, ENTRA) or "")


def test_escrows_accrue_across_cycles_until_a_success_or_a_release() -> None:
    """Entra: restart can "clear escrows (to restart the escrow counter that accrues toward quarantine
    status)" (application-provisioning-quarantine-status.md): failures add up over cycles."""
    con = duckdb.connect()
    small = QuarantinePolicy(min_failures=10, failure_rate=0.4, max_failures=100)
    assert q.after_apply(con, "a__b", q.ApplyStats(8, 6), small, T0) is None  # 6 failures: under the minimum
    state = q.after_apply(con, "a__b", q.ApplyStats(8, 6), small, T0 + timedelta(minutes=40))
    assert state is not None and state.status == "quarantined" and state.failures == 12
    # the retry schedule runs from the first failure (T0), not from the cycle that tipped it
    assert state.since == T0 and state.next_retry_at == T0 + timedelta(hours=6)
    q.release(con, "a__b", "alice", T0 + timedelta(hours=1))
    assert q.after_apply(con, "a__b", q.ApplyStats(8, 6), small, T0 + timedelta(hours=2)) is not None  # released
    assert q.get_state(con, "a__b").status == "released"  # escrow restarted: 6 failures only
    q.after_apply(con, "a__b", q.ApplyStats(8, 0), small, T0 + timedelta(hours=3))  # a success clears it
    assert q.get_state(con, "a__b").status == "released"
    assert q.after_apply(con, "a__b", q.ApplyStats(8, 6), small, T0 + timedelta(hours=4)).status == "released"
