"""Mapping semantics (Direct/Constant/Expression/None, default-if-null on create, apply modes)
per customize-application-attributes.md, and Entra's default cross-tenant mappings."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from xts_pipeline.expressions import ExpressionError, ExpressionEvaluationError
from xts_pipeline.mappings import (
    ENTRA_DEFAULT_MAPPINGS,
    FILL_KEY,
    Mapping,
    MappingError,
    compile_mappings,
    flatten_extension_attributes,
    merge_mappings,
    source_select,
)

USER = {"id": "u1", "givenName": "Zoë", "surname": "Doe", "displayName": "Zoë Doe", "department": "",
        "mail": "zoe@contoso.com", "accountEnabled": True, "mobilePhone": "+1 555", "proxyAddresses": ["a", "a"]}


def test_direct_constant_expression():
    cm = compile_mappings([
        {"target": "displayName", "source": "displayName"},
        {"target": "userType", "type": "Constant", "value": "Guest"},
        {"target": "mailNickname", "type": "Expression",
         "expression": 'ToLower(NormalizeDiacritics(Join(".", [givenName], [surname])))'},
    ])
    assert cm.apply(USER, is_create=True) == {"displayName": "Zoë Doe", "userType": "Guest", "mailNickname": "zoe.doe"}
    assert cm.source_attributes == {"displayName", "givenName", "surname"}


def test_default_if_null_applies_on_create_only():
    cm = compile_mappings([
        Mapping(target="department", source="department", default="Unknown"),
        Mapping(target="jobTitle", source="jobTitle", default="Staff"),
    ])
    assert cm.apply(USER, is_create=True) == {"department": "Unknown", "jobTitle": "Staff"}
    # On update the nulls are not provisioned at all: "Microsoft Entra ID currently can't provision null
    # attributes. If an attribute is null on the user object, it is skipped." (app-provisioning/known-issues.md)
    assert cm.apply(USER, is_create=False) == {}


def test_clear_when_null_opts_in_to_clearing():
    cm = compile_mappings([Mapping(target="jobTitle", source="jobTitle", clear_when_null=True),
                           Mapping(target="department", source="department")])
    assert cm.apply(USER, is_create=False) == {"jobTitle": None}


def test_on_create_only_skipped_on_update():
    cm = compile_mappings([
        Mapping(target="userType", type="Constant", value="Member", apply="OnCreateOnly"),
        Mapping(target="displayName", source="displayName"),
    ])
    assert cm.apply(USER, is_create=True) == {"userType": "Member", "displayName": "Zoë Doe"}
    assert cm.apply(USER, is_create=False) == {"displayName": "Zoë Doe"}


def test_none_type_writes_default_whenever_the_target_is_empty():
    """None: "The target attribute is left unmodified. However, if the target attribute is ever empty, it's
    populated with the default value that you specify." (customize-application-attributes.md) On update
    the default rides under FILL_KEY; the planner writes it only where the target attribute is empty."""
    cm = compile_mappings([Mapping(target="usageLocation", type="None", default="US")])
    assert cm.apply(USER, is_create=True) == {"usageLocation": "US"}
    assert cm.apply(USER, is_create=False) == {FILL_KEY: {"usageLocation": "US"}}


@pytest.mark.parametrize("target", ["proxyAddresses", "otherMails"])
def test_targets_entra_forbids_are_refused(target):
    """"ProxyAddresses is a read-only property in Microsoft Graph. It can be included as a source attribute
    in your mappings, but cannot be set as a target attribute." / "otherMails should not be included in your
    cross-tenant synchronization attribute mappings as a target attribute." (app-provisioning/known-issues.md)"""
    with pytest.raises(ValueError, match="cannot be a target attribute"):
        Mapping(target=target, source="mail")
    Mapping(target="mail", source="proxyAddresses")  # as a source it is fine


def test_extension_attributes_are_selected_through_on_premises_extension_attributes():
    assert source_select(["extensionAttribute3", "department", "extensionAttribute15"]) == [
        "department", "onPremisesExtensionAttributes"]
    user = flatten_extension_attributes({"onPremisesExtensionAttributes": {"extensionAttribute3": "E3"}})
    cm = compile_mappings([Mapping(target="companyName", source="extensionAttribute3")])
    assert cm.apply(user, is_create=False) == {"companyName": "E3"}


def test_ignore_flow_drops_attribute():
    cm = compile_mappings([Mapping(target="department", type="Expression",
                                   expression="IgnoreFlowIfNullOrEmpty([department])")])
    assert cm.apply(USER, is_create=False) == {}
    assert cm.apply({**USER, "department": "Sales"}, is_create=False) == {"department": "Sales"}


def test_boolean_targets_are_coerced():
    cm = compile_mappings([
        Mapping(target="showInAddressList", type="Constant", value="True"),
        Mapping(target="accountEnabled", type="Expression", expression='IIF([mail]="x","False","True")'),
    ])
    assert cm.apply(USER, is_create=True) == {"showInAddressList": True, "accountEnabled": True}


def test_entra_schema_names_are_translated():
    cm = compile_mappings([Mapping(target="mobile", source="mobile"),
                           Mapping(target="x", type="Expression", expression="Left([mobile], 2)")])
    assert cm.source_attributes == {"mobilePhone"}
    assert cm.apply(USER, is_create=True) == {"mobilePhone": "+1 555", "x": "+1"}


def test_redacted_targets():
    cm = compile_mappings([Mapping(target="employeeId", type="Expression", expression="Redact([employeeId])")])
    assert cm.redacted_targets == {"employeeId"}


def test_expression_failure_names_user_and_target():
    cm = compile_mappings([Mapping(target="country", type="Expression",
                                   expression='IIF([country]="USA","US",[country])')])
    with pytest.raises(MappingError) as info:
        cm.apply({"id": "user-42"}, is_create=True)
    err = info.value
    assert isinstance(err, ExpressionEvaluationError)
    assert "user-42" in str(err) and "'country'" in str(err) and (err.line, err.column) == (1, 1)


@pytest.mark.parametrize(("data", "fragment"), [
    ({"target": "x", "type": "Direct"}, "needs 'source'"),
    ({"target": "x", "type": "Constant"}, "needs 'value'"),
    ({"target": "x", "type": "Expression"}, "needs 'expression'"),
    ({"target": "x", "type": "Direct", "source": "a", "expression": "Left([a],1)"}, "does not use expression"),
    ({"target": "x", "type": "Expression", "expression": "Joinn([a])"}, "did you mean 'Join'"),
    ({"target": "x", "type": "Sometimes", "source": "a"}, "Direct"),
    ({"target": "x", "source": "a", "apply": "Never"}, "OnCreateOnly"),
    ({"target": " ", "source": "a"}, "attribute name is empty"),
    ({"target": "x", "source": "a", "colour": "red"}, "colour"),
])
def test_mapping_validation_messages(data, fragment):
    with pytest.raises(ValidationError) as info:
        Mapping.model_validate(data)
    assert fragment in str(info.value)


def test_expression_error_keeps_position_in_pydantic_context():
    with pytest.raises(ValidationError) as info:
        Mapping.model_validate({"target": "x", "type": "Expression", "expression": 'Join(",",\n  Lft([a], 1))'})
    (error,) = info.value.errors()
    assert error["loc"] == ("expression",)
    cause = error["ctx"]["error"]
    assert isinstance(cause, ExpressionError) and (cause.line, cause.column) == (2, 3)


def test_duplicate_target_rejected():
    with pytest.raises(ValueError, match=r"mappings\[1\] maps target 'Mail' again"):
        compile_mappings([Mapping(target="mail", source="mail"), Mapping(target="Mail", source="userPrincipalName")])


def test_entra_defaults():
    targets = {m.target: m for m in ENTRA_DEFAULT_MAPPINGS}
    assert targets["userType"].type == "Constant" and targets["userType"].value == "Member"
    assert targets["showInAddressList"].value == "True"
    assert {"displayName", "givenName", "surname", "mail", "accountEnabled", "department"} <= set(targets)
    assert "alternativeSecurityIds" not in targets  # Entra-internal matching attribute
    cm = compile_mappings(ENTRA_DEFAULT_MAPPINGS)
    out = cm.apply(USER, is_create=True)
    assert out["userType"] == "Member" and out["showInAddressList"] is True and out["displayName"] == "Zoë Doe"


def test_merge_overrides_and_removes():
    merged = merge_mappings(ENTRA_DEFAULT_MAPPINGS, [
        Mapping(target="userType", type="Constant", value="Guest"),
        Mapping(target="mobile", type="None"),  # Entra name of mobilePhone: removes it
        Mapping(target="employeeType", type="Constant", value="Partner"),
    ])
    by_target = {m.target: m for m in merged}
    assert by_target["userType"].value == "Guest"
    assert "mobilePhone" not in by_target and "mobile" not in by_target
    assert merged[-1].target == "employeeType"
    assert len(merged) == len(ENTRA_DEFAULT_MAPPINGS)  # one replaced, one removed, one added


names = st.sampled_from(["displayName", "mail", "city", "jobTitle", "department"])
mapping_strategy = st.builds(
    lambda t, s, a, d: Mapping(target=t, source=s, apply=a, default=d),
    names, names, st.sampled_from(["Always", "OnCreateOnly"]), st.none() | st.just("dflt"))


@settings(max_examples=100, deadline=None)
@given(st.lists(mapping_strategy, max_size=6, unique_by=lambda m: m.target),
       st.dictionaries(names, st.none() | st.text(max_size=5)))
def test_update_never_writes_more_than_create(mappings, user):
    cm = compile_mappings(mappings)
    created, updated = cm.apply(user, is_create=True), cm.apply(user, is_create=False)
    assert set(updated) <= set(created) <= {m.target for m in mappings}
    assert "dflt" not in {v for k, v in updated.items() if user.get(k) != "dflt"}


def test_compiled_mappings_pickle():
    import pickle

    cm = compile_mappings(ENTRA_DEFAULT_MAPPINGS + (Mapping(target="x", type="Expression", expression="ToUpper([mobile])"),))
    back = pickle.loads(pickle.dumps(cm))  # noqa: S301 - our own object
    assert back.apply(USER, is_create=True) == cm.apply(USER, is_create=True)
    assert back.source_attributes == cm.source_attributes


_BOTH_MAPPINGS = [
    Mapping(target="displayName", source="displayName", clear_when_null=True),
    Mapping(target="department", source="department", default="Unknown"),
    Mapping(target="jobTitle", source="jobTitle", default="Staff", apply="OnCreateOnly"),
    Mapping(target="userType", type="Constant", value="Member", apply="OnCreateOnly"),
    Mapping(target="showInAddressList", type="Constant", value="true"),
    Mapping(target="usageLocation", type="None", default="US"),
    Mapping(target="city", type="None", default="Paris", apply="OnCreateOnly"),
    Mapping(target="businessPhones", source="mobilePhone"),
    Mapping(target="accountEnabled", source="accountEnabled"),
    Mapping(target="companyName", type="Expression",
            expression='IgnoreFlowIfNullOrEmpty(Join(" ", [givenName], [surname]))'),
    Mapping(target="employeeId", type="Expression", expression='Coalesce([employeeId], "none")'),
]
_VALUE = st.one_of(st.none(), st.just(""), st.text(max_size=6), st.booleans(), st.sampled_from(["true", "False"]))


@settings(max_examples=150, deadline=None)
@given(user=st.fixed_dictionaries({}, optional={k: _VALUE for k in (
    "id", "displayName", "department", "jobTitle", "givenName", "surname", "mobilePhone", "accountEnabled",
    "employeeId")}))
def test_apply_both_is_the_create_and_update_passes(user):
    """The one-pass apply_both the desired step uses gives exactly apply(user, True) and apply(user, False)."""
    cm = compile_mappings(_BOTH_MAPPINGS)
    try:
        expected = (cm.apply(user, True), cm.apply(user, False))
    except ExpressionEvaluationError as exc:
        with pytest.raises(type(exc)) as got:
            cm.apply_both(user)
        assert str(got.value) == str(exc)
        return
    create, update = cm.apply_both(user)
    assert (create, update) == expected
    assert list(create) == list(expected[0]) and list(update) == list(expected[1])  # same key order: same JSON
