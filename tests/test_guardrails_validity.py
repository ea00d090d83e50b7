"""Every written value is validated: Graph's documented limits and the target's hygiene rules.

Graph v1.0 user resource (https://learn.microsoft.com/graph/api/resources/user): "city ... Maximum length is
128 characters"; "department ... Maximum length is 64 characters"; "displayName ... Maximum length is 256
characters"; businessPhones: "only one number can be set for this property"; mail / userPrincipalName: "This
property cannot contain accent characters". extensionProperty: "String: 256 characters maximum".
"""

from __future__ import annotations

import pytest

from xts_pipeline.guardrails.policy import InboundPolicy
from xts_pipeline.guardrails.validity import check_attribute_validity, value_problems

POLICY = InboundPolicy()


def row(sid: str, action: str = "create", **desired):
    changes = [{"property": k, "old": None, "new": v} for k, v in desired.items()] if action != "create" else []
    return {"pair_key": "src__dst", "change_id": f"c-{sid}", "source_object_id": sid, "action": action,
            "target_user_id": None if action == "create" else f"t-{sid}", "desired": desired, "changes": changes}


@pytest.mark.parametrize("attr,value,rule", [
    ("city", "x" * 129, "more than Graph's maximum length of 128"),
    ("department", "x" * 65, "maximum length of 64"),
    ("displayName", "x" * 257, "maximum length of 256"),
    ("employeeId", "x" * 17, "maximum length of 16"),
    ("extension_abc_costCentre", "x" * 257, "directory extension limit of 256"),
    ("onPremisesExtensionAttributes", {"extensionAttribute1": "x" * 1025}, "maximum for any string of 1024"),
    ("streetAddress", "1 Main St\x00", "control character U+0000"),
    ("state", "WA\x1b[2J", "control character U+001B"),
    ("jobTitle", "Engineer\nFAKE LOG", "control character U+000A"),
    ("displayName", "Megan \u202enewoB", "bidi control U+202E"),
    ("businessPhones", ["+1 555 0100", "+1 555 0101"], "only one number"),
    ("mail", "m\u00e9gan@contoso.example", "cannot contain accent characters"),
    ("userPrincipalName", "me\u0301gan@contoso.example", "cannot contain accent characters"),
])
def test_bad_values_are_named_with_their_rule(attr, value, rule) -> None:
    problems = value_problems(attr, value)
    assert problems and rule in problems[0] and problems[0].startswith(attr)


@pytest.mark.parametrize("attr,value", [
    ("city", "x" * 128), ("displayName", "Zo\u00eb O'Brien-Sm\u00edth"), ("businessPhones", ["+1 555 0100"]),
    ("mail", "zoe@contoso.example"), ("department", None), ("businessPhones", []),
])
def test_good_values_pass(attr, value) -> None:
    assert value_problems(attr, value) == []


def test_bad_value_holds_only_that_user_and_every_writing_action_is_checked() -> None:
    plan = [row("ok", displayName="Alex"), row("bad", action="update", city="x" * 300),
            row("dis", action="disable", accountEnabled=False, jobTitle="A\x07")]
    result = check_attribute_validity(plan, POLICY)
    assert result.blocked_user_ids == {"bad", "dis"} and result.severity == "ERROR" and not result.blocking
    assert "city is 300 characters" in result.message


def test_warn_policy_still_keeps_invalid_values_out() -> None:
    policy = InboundPolicy.model_validate({"on_violation": {"attribute_policy": "warn"}})
    assert check_attribute_validity([row("bad", city="x" * 300)], policy).blocked_user_ids == {"bad"}
