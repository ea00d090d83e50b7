"""The flood (80,000 into 500) and mass deletion above Entra's threshold block the whole pair."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from xts_pipeline.guardrails.policy import InboundPolicy
from xts_pipeline.guardrails.volume import check_deletions, check_volume, creates_limit

POLICY = InboundPolicy(allowed_sources=["contoso"])


def plan(**counts: int) -> list[dict]:
    return [{"source_object_id": f"{action}-{i}", "action": action, "change_id": f"{action}-{i}",
             "desired": {"displayName": f"User {i}"}} for action, n in counts.items() for i in range(n)]


def test_flood_80000_into_500_is_blocked() -> None:
    result = check_volume(plan(create=80_000), POLICY, target_size=500, existing_from_source=0, pair="contoso->fabrikam")
    assert not result.passed and result.blocking and result.scope == "pair"
    # 10 % of 500 = 50 is the tightest limit.
    assert (result.count, result.limit) == (80_000, 50)
    assert "contoso->fabrikam" in result.message and "80000 > 50" in result.message
    assert "max_b2b_users_per_source" in result.message
    meta = result.to_metadata()
    assert meta["count"] == 80_000 and meta["limit"] == 50 and len(meta["offenders"]) == 20


def test_limits_pass_and_report_count_vs_limit() -> None:
    result = check_volume(plan(create=40, update=10), POLICY, target_size=500, existing_from_source=100)
    assert result.passed and not result.blocking
    assert (result.count, result.limit) == (40, 50)
    assert "40 of 50" in result.message


def test_percentage_floor_and_absolute_cap() -> None:
    assert creates_limit(POLICY, 0)[0] == 50  # a near-empty target can take a first batch
    assert creates_limit(POLICY, 100_000)[0] == 500  # the absolute cap wins for big targets
    no_pct = InboundPolicy.model_validate({"volume": {"max_creates_pct_of_target": None}})
    assert creates_limit(no_pct, 10)[0] == 500


def test_updates_and_per_source_total() -> None:
    policy = InboundPolicy.model_validate({"volume": {"max_updates_per_cycle": 5, "max_b2b_users_per_source": 120}})
    result = check_volume(plan(update=6, create=30), policy, target_size=10_000, existing_from_source=100)
    assert not result.passed
    assert "max_updates_per_cycle=5: 6 > 5" in result.message
    assert "(existing 100 + 30 new): 130 > 120" in result.message


def test_warn_does_not_block() -> None:
    policy = InboundPolicy.model_validate({"on_violation": {"volume": "warn"}})
    result = check_volume(plan(create=1000), policy, target_size=500, existing_from_source=0)
    assert not result.passed and result.severity == "WARN" and not result.blocking


def test_mass_deletion_counts_disables_and_deletes() -> None:
    result = check_deletions(plan(disable=300, delete=201, update=5000), POLICY, existing_from_source=10_000,
                             pair="contoso->fabrikam")
    assert not result.passed and result.blocking
    assert (result.count, result.limit) == (501, 500)
    assert "disables + deletes" in result.message
    assert check_deletions(plan(disable=250, delete=250), POLICY, existing_from_source=10_000).passed


def test_deletion_percentage() -> None:
    policy = InboundPolicy.model_validate({"deletions": {"threshold_pct": 10}})
    result = check_deletions(plan(delete=11), policy, existing_from_source=100)
    assert not result.passed and "threshold_pct=10% of 100" in result.message


@given(st.integers(0, 2_000), st.integers(0, 1_000_000))
def test_volume_passes_iff_creates_within_effective_limit(creates: int, size: int) -> None:
    policy = InboundPolicy.model_validate({"volume": {"max_b2b_users_per_source": None}})
    limit, _ = creates_limit(policy, size)
    assert check_volume(plan(create=creates), policy, size, 0).passed == (creates <= limit)


def test_adoptions_count_with_updates_and_toward_the_source_total() -> None:
    policy = InboundPolicy.model_validate({"volume": {"max_updates_per_cycle": 5, "max_b2b_users_per_source": 104}})
    result = check_volume(plan(update=3, adopt=3), policy, target_size=10_000, existing_from_source=100)
    assert not result.passed
    assert "(updates and 3 adoptions): 6 > 5" in result.message


# --- Over time and across pairs: the target's rolling window and its B2B total ---------------------

from xts_pipeline.guardrails.volume import TargetVolume  # noqa: E402

SMALL = TargetVolume(window_creates=0, pending_other=0, internal_members=500, external_users=0)
CMD = "`xts approve --pair 'contoso->fabrikam' --plan abc --reason \"...\"`"


def test_paced_flood_under_the_per_cycle_cap_meets_the_window() -> None:
    """Defaults: 50 per cycle into a 500-member target passes alone, but not after 250 creates in 24 h."""
    cycle = plan(create=50)
    assert check_volume(cycle, POLICY, 500, 0, "contoso->fabrikam", SMALL).passed
    paced = TargetVolume(window_creates=201, internal_members=500)
    res = check_volume(cycle, POLICY, 500, 201, "contoso->fabrikam", paced, approve=CMD)
    assert not res.passed and res.blocking
    assert "max_creates_window_pct_of_members=50% of 500 internal members" in res.message
    assert "last 24 h (logged 201 + other pairs' pending 0 + this plan 50): 251 > 250" in res.message
    assert CMD in res.message


def test_flood_split_across_sources_counts_every_pair_into_the_target() -> None:
    other = TargetVolume(window_creates=0, pending_other=240, internal_members=500)
    res = check_volume(plan(create=20), POLICY, 500, 0, "litware->fabrikam", other)
    assert not res.passed and "other pairs' pending 240" in res.message


def test_b2b_total_relative_to_internal_members() -> None:
    """80,000 into 500 can never creep in: at most 200 % of members (b2b_floor 1,000) without an approval."""
    crept = TargetVolume(window_creates=0, internal_members=500, external_users=990)
    res = check_volume(plan(create=20), POLICY, 1490, 990, "contoso->fabrikam", crept)
    assert not res.passed and "max_b2b_pct_of_members=200% of 500 internal members" in res.message
    assert "990 now + 0 pending + 20 new" in res.message
    # Plans that add nobody are not stopped by what the target already holds.
    assert check_volume(plan(update=10), POLICY, 1490, 990, "contoso->fabrikam", crept).passed


def test_held_users_are_not_counted() -> None:
    res = check_volume(plan(create=60), POLICY, 500, 0, "c->f", SMALL, held={f"create-{i}" for i in range(20)})
    assert res.passed and res.count == 40


def test_approval_passes_the_window_cap() -> None:
    paced = TargetVolume(window_creates=240, internal_members=500)
    res = check_volume(plan(create=50), POLICY, 500, 0, "c->f", paced)
    approved = res.with_approval({"approved_by": "ciso", "approved_at": "now", "reason": "merger"})
    assert approved.passed and approved.approval["approved_by"] == "ciso"
