"""Privilege by attribute: a department value that lands a user in a role-assignable dynamic group."""

from __future__ import annotations

from xts_pipeline.guardrails.policy import InboundPolicy
from xts_pipeline.guardrails.privilege import check_privilege, privileged_groups


def row(sid: str, action: str = "create", changed: tuple[str, ...] = (), **desired):
    return {"pair_key": "contoso__fabrikam", "change_id": f"ch-{sid}", "source_object_id": sid,
            "target_user_id": None if action == "create" else f"t-{sid}", "action": action, "desired": desired,
            "changes": [{"property": p, "old": None, "new": desired.get(p)} for p in changed]}


POLICY = InboundPolicy(allowed_sources=["contoso"])
# Group shapes as Graph returns them; rules from the dynamic-membership doc's examples.
TIER0 = {"id": "g-admins", "displayName": "Helpdesk Admins", "groupTypes": ["DynamicMembership"],
         "membershipRule": '(user.department -eq "IT Operations") -and (user.userType -eq "Member")',
         "isAssignableToRole": True, "membershipRuleProcessingState": "On"}
SALES = {"id": "g-sales", "displayName": "Sales", "groupTypes": ["DynamicMembership"],
         "membershipRule": 'user.department -eq "Sales"', "isAssignableToRole": False}
FINANCE = {"id": "g-fin", "displayName": "Finance Approvers", "groupTypes": ["DynamicMembership"],
           "membershipRule": 'user.jobTitle -contains "Controller"', "isAssignableToRole": False}
BROKEN = {"id": "g-bad", "displayName": "Broken Rule", "groupTypes": ["DynamicMembership"],
          "membershipRule": 'user.department -eq "x" -and', "isAssignableToRole": True}
STATIC = {"id": "g-static", "displayName": "Global Admins (static)", "groupTypes": [], "membershipRule": None,
          "isAssignableToRole": True}


def test_department_landing_in_role_assignable_group_is_blocked() -> None:
    plan = [row("s1", department="IT Operations", userType="Member", displayName="Eve"),
            row("s2", department="Sales", userType="Member")]
    result = check_privilege(plan, [TIER0, SALES, STATIC], POLICY)
    assert not result.passed and result.blocked_user_ids == {"s1"}
    off = result.offenders[0]
    assert off["group"] == "Helpdesk Admins" and off["group_is"] == "role-assignable"
    assert off["attributes"] == {"department": "IT Operations", "userType": "Member"}
    assert 'user.department -eq "IT Operations"' in off["clauses"]
    assert "department='IT Operations'" in result.message and "Helpdesk Admins" in result.message
    assert TIER0["membershipRule"] in result.message


def test_policy_listed_group_by_name_is_privileged() -> None:
    policy = InboundPolicy.model_validate({"privilege": {"privileged_groups": ["finance approvers"]}})
    result = check_privilege([row("s1", jobTitle="Financial Controller")], [FINANCE, SALES], policy)
    assert result.blocked_user_ids == {"s1"}
    assert result.offenders[0]["group_is"] == "listed as privileged in the inbound policy"


def test_non_privileged_group_is_not_a_violation() -> None:
    assert check_privilege([row("s1", department="Sales")], [SALES], POLICY).passed


def test_role_assignable_off_switch() -> None:
    policy = InboundPolicy.model_validate({"privilege": {"treat_role_assignable_as_privileged": False}})
    assert check_privilege([row("s1", department="IT Operations", userType="Member")], [TIER0], policy).passed


def test_invalid_rule_is_skipped_with_warning() -> None:
    groups, warnings = privileged_groups([BROKEN, TIER0], POLICY)
    assert [g.id for g in groups] == ["g-admins"]
    assert "Broken Rule" in warnings[0] and "g-bad" in warnings[0]
    result = check_privilege([row("s1", department="x")], [BROKEN], POLICY)
    assert result.passed and result.warnings


def test_update_counts_only_when_it_writes_a_rule_property() -> None:
    plan = [row("s1", action="update", changed=("jobTitle",), department="IT Operations", userType="Member",
                jobTitle="Engineer"),
            row("s2", action="update", changed=("department",), department="IT Operations", userType="Member")]
    assert check_privilege(plan, [TIER0], POLICY).blocked_user_ids == {"s2"}


def test_store_row_shape_is_accepted() -> None:
    store_group = {"id": "g-admins", "display_name": "Helpdesk Admins", "group_types": '["DynamicMembership"]',
                   "membership_rule": TIER0["membershipRule"], "is_assignable_to_role": True}
    result = check_privilege([row("s1", department="IT Operations", userType="Member")], [store_group], POLICY)
    assert result.blocked_user_ids == {"s1"}
