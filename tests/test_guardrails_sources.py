"""Source consent (allowed_sources + isSyncAllowed) and the loop guard; attribute policy."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from xts_pipeline.guardrails.attribute_policy import check_attribute_policy, mail_domain_allowed
from xts_pipeline.guardrails.policy import InboundPolicy
from xts_pipeline.guardrails.sources import check_sources, is_external_identity, is_sync_allowed, loop_guard

# Shape of crossTenantIdentitySyncPolicyPartner (Graph: GET .../partners/{id}/identitySynchronization).
ALLOWED = {"tenantId": "9c5d131d-b1c3-4fc4-9e3f-c6557947d551", "displayName": "Contoso",
           "userSyncInbound": {"isSyncAllowed": True}}
DENIED = {**ALLOWED, "userSyncInbound": {"isSyncAllowed": False}}
POLICY = InboundPolicy(allowed_sources=["contoso"])


def test_listed_source_with_consent_may_write() -> None:
    assert check_sources("contoso", "fabrikam", POLICY, ALLOWED).passed


@pytest.mark.parametrize("source,partner,needle", [
    ("litware", ALLOWED, "not in allowed_sources"),
    ("contoso", DENIED, "isSyncAllowed"),
    ("contoso", None, "isSyncAllowed"),
])
def test_unlisted_or_unconsented_source_is_blocked(source, partner, needle) -> None:
    result = check_sources(source, "fabrikam", POLICY, partner)
    assert not result.passed and result.blocking and not result.approvable
    assert needle in result.message and f"{source}->fabrikam" in result.message
    assert result.with_approval({"approved_by": "x"}).passed is False  # consent cannot be approved away


def test_default_policy_allows_no_source() -> None:
    assert not check_sources("contoso", "fabrikam", InboundPolicy(), ALLOWED).passed


def test_is_sync_allowed_needs_literal_true() -> None:
    assert not is_sync_allowed({"userSyncInbound": {"isSyncAllowed": "true"}})
    assert not is_sync_allowed({})


@pytest.mark.parametrize("user,external", [
    ({"id": "1", "userType": "Member", "creationType": None, "userPrincipalName": "a@contoso.com"}, False),
    ({"id": "2", "userType": "Guest", "creationType": None, "userPrincipalName": "b@contoso.com"}, True),
    ({"id": "3", "userType": "Member", "creationType": "Invitation", "userPrincipalName": "c@contoso.com"}, True),
    ({"id": "4", "userType": "Member", "userPrincipalName": "d_fabrikam.com#EXT#@contoso.onmicrosoft.com"}, True),
    ({"id": "5", "user_type": "guest", "user_principal_name": "e@contoso.com"}, True),  # staged_users columns
])
def test_external_identity(user, external) -> None:
    assert is_external_identity(user) is external


def test_loop_guard_blocks_b2b_users_and_is_not_approvable() -> None:
    users = [{"id": "m", "userType": "Member", "userPrincipalName": "m@contoso.com"},
             {"id": "g", "userType": "Member", "creationType": "Invitation",
              "userPrincipalName": "g_fabrikam.com#EXT#@contoso.onmicrosoft.com"}]
    result = loop_guard(users, "contoso->fabrikam")
    assert not result.passed and result.blocked_user_ids == {"g"} and not result.approvable
    assert "g_fabrikam.com#EXT#" in result.message
    assert result.with_approval({"approved_by": "x"}).blocked_user_ids == {"g"}


def _row(sid, **desired):
    return {"source_object_id": sid, "action": "create", "desired": desired, "change_id": sid}


ATTR_POLICY = InboundPolicy.model_validate({
    "attribute_policy": {
        "jobTitle": {"deny_patterns": ["(?i)admin"], "max_length": 20},
        "department": {"allow": ["Sales", "Engineering"]},
    },
    "allowed_mail_domains": ["contoso.com", "*.contoso.com"],
})


def test_attribute_policy_names_user_attribute_and_rule() -> None:
    plan = [_row("ok", jobTitle="Engineer", department="sales", mail="a@contoso.com"),
            _row("deny", jobTitle="Domain Admin", mail="b@eu.contoso.com"),
            _row("long", jobTitle="x" * 21),
            _row("dept", department="IT Admins"),
            _row("mail", mail="ceo@evil.example")]
    result = check_attribute_policy(plan, ATTR_POLICY)
    assert result.blocked_user_ids == {"deny", "long", "dept", "mail"}
    whys = {o["source_object_id"]: o["why"] for o in result.offenders}
    assert whys["deny"] == "jobTitle matches deny pattern '(?i)admin'"
    assert "max_length 20" in whys["long"] and "allow-list" in whys["dept"]
    assert "allowed_mail_domains" in whys["mail"]
    assert "Domain Admin" in result.message


def test_mail_domains() -> None:
    assert mail_domain_allowed("A@Contoso.com", ["contoso.com"])
    assert not mail_domain_allowed("a@evilcontoso.com", ["*.contoso.com", "contoso.com"])
    assert not mail_domain_allowed("no-at-sign", ["contoso.com"])


def test_bad_deny_pattern_is_a_config_error() -> None:
    with pytest.raises(ValidationError, match="not a valid Python regex"):
        InboundPolicy.model_validate({"attribute_policy": {"jobTitle": {"deny_patterns": ["(unclosed"]}}})


def test_policy_rejects_unknown_keys() -> None:
    with pytest.raises(ValidationError):
        InboundPolicy.model_validate({"volume": {"max_create_per_cycle": 5}})
