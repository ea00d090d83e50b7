"""The CEO look-alike: incoming users that mimic protected identities are blocked, others pass."""

from __future__ import annotations

import json

import pytest

from xts_pipeline.guardrails.impersonation import (
    check_impersonation,
    find_impersonations,
    identity_values,
    protected_identities,
)
from xts_pipeline.guardrails.policy import InboundPolicy


def row(sid: str, action: str = "create", target_user_id: str | None = None, as_json: bool = False, **desired):
    changes = [{"property": k, "old": None, "new": v} for k, v in desired.items()] if action == "update" else []
    return {"pair_key": "contoso__fabrikam", "cycle_id": "c1", "change_id": f"ch-{sid}", "source_object_id": sid,
            "target_user_id": target_user_id, "action": action,
            "desired": json.dumps(desired) if as_json else desired, "changes": changes}


POLICY = InboundPolicy.model_validate(
    {"allowed_sources": ["contoso"], "impersonation": {"protected": [{"value": "Megan Bowen", "label": "CEO"}]}}
)
# Target users as Graph returns them (shape of the documented GET /users response).
ADMIN = {"id": "a1", "displayName": "Adele Vance", "mail": "AdeleV@fabrikam.onmicrosoft.com",
         "userPrincipalName": "AdeleV@fabrikam.onmicrosoft.com", "mailNickname": "AdeleV"}


@pytest.mark.parametrize("name,trick", [
    ("Megan Bowen", "identical"),
    ("M\u0435gan Bowen", "Cyrillic \u0435"),
    ("Mégan Bowen", "Latin é"),
    ("megan  BOWEN", "case"),
    ("Megan.Bowen", "punctuation"),
])
def test_ceo_lookalike_blocked_with_cause(name: str, trick: str) -> None:
    plan = [row("s1", displayName=name), row("s2", displayName="Alex Wilber")]
    result = check_impersonation(plan, protected_identities(POLICY), POLICY)
    assert not result.passed and result.severity == "ERROR" and result.scope == "user"
    assert result.blocked_user_ids == {"s1"}
    assert "'Megan Bowen' (CEO)" in result.message and name in result.message
    assert trick in result.message or trick in ("case", "punctuation")
    assert result.offenders[0]["field"] == "displayName"


def test_message_names_cyrillic_letter() -> None:
    result = check_impersonation([row("s1", displayName="M\u0435gan Bowen")], protected_identities(POLICY), POLICY)
    assert "resembles 'Megan Bowen' (CEO): Cyrillic \u0435" in result.message


def test_role_holders_and_role_assignable_members_are_protected() -> None:
    protected = protected_identities(POLICY, [ADMIN, {"id": "u9", "displayName": "Nobody Special"}],
                                     role_assignable_members={"a1": "Tier0 Admins"},
                                     role_holders={"a1": "Global Administrator"})
    plan = [
        row("s1", mail="adelev@contoso.com", displayName="Adele V."),  # mail local part = protected UPN prefix
        row("s2", displayName="Nobody Special"),  # not protected
        row("s3", mailNickname="Ade1eV"),
    ]
    found = find_impersonations(plan, protected)
    assert {f["source_object_id"] for f in found} == {"s1", "s3"}
    assert "Tier0 Admins" in found[0]["protected_because"]


def test_switches_off_automatic_protection() -> None:
    policy = InboundPolicy.model_validate({"impersonation": {"include_directory_role_holders": False,
                                                             "include_role_assignable_group_members": False}})
    assert protected_identities(policy, [ADMIN], ["a1"], ["a1"]) == []


def test_ext_upn_uses_original_alias() -> None:
    assert identity_values("userPrincipalName", "megan_contoso.com#EXT#@fabrikam.onmicrosoft.com") == ["megan"]
    assert identity_values("mail", "MeganB@contoso.com") == ["MeganB@contoso.com", "MeganB"]


def test_update_only_checks_written_fields_and_not_itself() -> None:
    protected = protected_identities(POLICY, [ADMIN], role_holders=["a1"])
    plan = [
        row("s1", action="update", target_user_id="t1", jobTitle="CFO"),  # identity fields untouched
        row("s2", action="update", target_user_id="a1", displayName="Adele Vance"),  # its own record
        row("s3", action="update", target_user_id="t3", displayName="Adele Vance"),
        row("s4", action="delete", target_user_id="t4"),
    ]
    assert [f["source_object_id"] for f in find_impersonations(plan, protected)] == ["s3"]


def test_json_desired_and_warn_policy() -> None:
    policy = POLICY.model_copy(update={"on_violation": POLICY.on_violation.model_copy(
        update={"impersonation": "warn"})})
    result = check_impersonation([row("s1", as_json=True, displayName="MEGAN BOWEN")], protected_identities(policy),
                                 policy)
    assert not result.passed and result.severity == "WARN" and result.blocked_user_ids == frozenset()
    assert result.count == 1


def test_clean_plan_passes() -> None:
    result = check_impersonation([row("s1", displayName="Alex Wilber")], protected_identities(POLICY), POLICY)
    assert result.passed and result.count == 0
    assert result.to_metadata()["passed"] is True


def test_short_skeletons_are_ignored() -> None:
    policy = InboundPolicy.model_validate({"impersonation": {"protected": ["Al"]}})
    assert find_impersonations([row("s1", displayName="AL")], protected_identities(policy)) == []


def test_a_flood_hides_no_look_alike() -> None:
    """80,000 incoming users against 4,000 protected values find exactly the one look-alike.

    How fast that is, is bench/guardrails_bench.py's figure, not a timed test."""
    protected = protected_identities(POLICY, [{**ADMIN, "id": f"a{i}", "displayName": f"Admin Person {i}"}
                                              for i in range(1000)], role_holders=[f"a{i}" for i in range(1000)])
    plan = [row(f"s{i}", displayName=f"Flood User {i}", mail=f"flood{i}@contoso.com") for i in range(80_000)]
    plan.append(row("evil", displayName="Admin Pers0n 7"))
    found = find_impersonations(plan, protected)
    assert [f["source_object_id"] for f in found] == ["evil"]


def test_exemption_names_a_source_and_never_matches_another_pair() -> None:
    """An exemption is tied to one source: by object id, or by an address in a verified domain of that source."""
    policy = InboundPolicy.model_validate({"impersonation": {"protected": ["Megan Bowen"], "exempt": [
        {"source": "contoso", "address": "MeganB@contoso.com"}, {"source": "contoso", "object_id": "s9"}]}})
    plan = [row("s1", displayName="Megan Bowen"), row("s9", displayName="Megan Bowen"),
            row("s2", displayName="Megan Bowen")]
    plan[0]["mail"] = "meganb@contoso.com"
    prot = protected_identities(policy)
    assert check_impersonation(plan, prot, policy, "contoso", {"contoso.com"}).blocked_user_ids == {"s2"}
    # The same rows from another source: nothing is exempt.
    assert check_impersonation(plan, prot, policy, "litware", {"contoso.com"}).blocked_user_ids == {"s1", "s2", "s9"}
    # The address's domain is not verified by the source (or its domains were never read): no address exemption.
    assert check_impersonation(plan, prot, policy, "contoso", set()).blocked_user_ids == {"s1", "s2"}


def test_exemption_without_a_source_is_refused() -> None:
    with pytest.raises(ValueError, match="names no source"):
        InboundPolicy.model_validate({"impersonation": {"exempt": ["megan@contoso.com"]}})


def test_zero_width_trick_is_made_visible_in_message() -> None:
    result = check_impersonation([row("s1", displayName="Megan\u200bBowen\nFAKE LOG LINE")],
                                 protected_identities(POLICY), POLICY)
    assert not result.passed  # extra words do not make another person ...
    result = check_impersonation([row("s1", displayName="Megan\u200bBowen")], protected_identities(POLICY), POLICY)
    assert "Megan\\u200bBowen" in result.message and "\u200b" not in result.message
