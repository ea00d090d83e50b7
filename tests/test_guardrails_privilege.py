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


def test_unparseable_rule_fails_closed_on_the_properties_it_names() -> None:
    """A privileged group whose rule cannot be parsed holds every write touching a property its text names."""
    groups, warnings = privileged_groups([BROKEN, TIER0], POLICY)
    assert [g.id for g in groups] == ["g-bad", "g-admins"] and groups[0].error
    assert groups[0].properties == {"department"}
    assert "Broken Rule" in warnings[0] and "g-bad" in warnings[0] and "DEGRADED" in warnings[0]
    result = check_privilege([row("s1", department="x"), row("s2", jobTitle="Engineer")], [BROKEN], POLICY)
    assert result.blocked_user_ids == {"s1"} and result.degraded and result.to_metadata()["degraded"] is True
    assert "Broken Rule" in result.message and "cannot be evaluated" in result.message
    # An update that does not touch department is not held by the broken group.
    upd = row("s3", action="update", changed=("jobTitle",), jobTitle="Engineer")
    upd["current"] = {"department": "Sales", "jobTitle": "Intern"}
    assert check_privilege([upd], [BROKEN], POLICY).blocked_user_ids == frozenset()


def test_rule_is_evaluated_on_the_post_write_record() -> None:
    """Target-side attributes the pair does not map keep their current values (here userType)."""
    upd = row("s1", action="update", changed=("department",), department="IT Operations")
    upd["current"] = {"userType": "Member", "department": "Sales", "accountEnabled": True}
    assert check_privilege([upd], [TIER0], POLICY).blocked_user_ids == {"s1"}
    upd["current"] = {"userType": "Guest", "department": "Sales", "accountEnabled": True}
    assert check_privilege([upd], [TIER0], POLICY).passed


def test_disable_row_carrying_other_changes_is_judged_by_all_of_them() -> None:
    dis = row("s1", action="disable", changed=("accountEnabled", "department"), accountEnabled=False,
              department="IT Operations")
    dis["current"] = {"userType": "Member", "department": "Sales", "accountEnabled": True}
    assert check_privilege([dis], [TIER0], POLICY).blocked_user_ids == {"s1"}


def test_re_enable_rechecks_the_whole_record() -> None:
    """The re-enable writes only accountEnabled, but brings back a record that satisfies the rule."""
    ren = row("s1", action="update", changed=("accountEnabled",), accountEnabled=True)
    ren["current"] = {"userType": "Member", "department": "IT Operations", "accountEnabled": False}
    assert check_privilege([ren], [TIER0], POLICY).blocked_user_ids == {"s1"}
    ren["current"] = {"userType": "Member", "department": "Sales", "accountEnabled": False}
    assert check_privilege([ren], [TIER0], POLICY).passed  # innocent re-enable


def test_already_member_is_not_held_for_an_unrelated_change() -> None:
    upd = row("s1", action="update", changed=("department",), department="IT Operations")
    upd["current"] = {"userType": "Member", "department": "IT Operations ", "accountEnabled": True}
    # before: "IT Operations " (trailing space) does not satisfy -eq; after does: held.
    assert not check_privilege([upd], [TIER0], POLICY).passed


def test_update_counts_only_when_it_writes_a_rule_property() -> None:
    plan = [row("s1", action="update", changed=("jobTitle",), department="IT Operations", userType="Member",
                jobTitle="Engineer"),
            row("s2", action="update", changed=("department",), department="IT Operations", userType="Member")]
    for r in plan:
        r["current"] = {"userType": "Member", "department": "Sales", "jobTitle": "Intern", "accountEnabled": True}
    plan[0]["current"]["department"] = "IT Operations"  # already a member: its jobTitle change does not add it
    assert check_privilege(plan, [TIER0], POLICY).blocked_user_ids == {"s2"}


def test_store_row_shape_is_accepted() -> None:
    store_group = {"id": "g-admins", "display_name": "Helpdesk Admins", "group_types": '["DynamicMembership"]',
                   "membership_rule": TIER0["membershipRule"], "is_assignable_to_role": True}
    result = check_privilege([row("s1", department="IT Operations", userType="Member")], [store_group], POLICY)
    assert result.blocked_user_ids == {"s1"}
