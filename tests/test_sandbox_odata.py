"""The sandbox's $filter/$select parser: documented examples plus hypothesis invariants."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xts_pipeline.sandbox.odata import ODataError, parse_filter, parse_select

PROPS = {"id", "displayName", "mail", "accountEnabled", "userType", "otherMails", "createdDateTime",
         "department", "extension_abc_xtsSourceObjectId"}
ANA = {"id": "1", "displayName": "Ana Núñez", "mail": "ana@contoso.com", "accountEnabled": True,
       "userType": "Member", "otherMails": ["ana@home.example"], "createdDateTime": "2024-03-01T10:00:00Z",
       "department": None, "extension_abc_xtsSourceObjectId": "src-1"}


@pytest.mark.parametrize("flt, expected, advanced", [
    # examples from Graph's "Use the $filter query parameter" and users list pages
    ("startswith(displayName,'a')", True, False),
    ("displayName eq 'ANA NÚÑEZ'", True, False),
    ("mail eq 'ana@contoso.com'", True, False),
    ("accountEnabled eq false", False, False),
    ("userType eq 'Member' and accountEnabled eq true", True, False),
    ("userType eq 'Guest' or startswith(mail,'ana')", True, False),
    ("mail in ('x@y.z', 'ana@contoso.com')", True, False),
    ("otherMails/any(x:x eq 'ana@home.example')", True, False),
    ("otherMails/any(x:startswith(x,'ana@'))", True, False),
    ("createdDateTime ge 2024-01-01T00:00:00Z", True, False),
    ("createdDateTime lt 2024-01-01T00:00:00Z", False, False),
    ("endswith(mail,'@contoso.com')", True, True),
    ("department eq null", True, True),
    ("mail ne null", True, True),
    ("not(userType eq 'Guest')", True, True),
    ("not startswith(displayName,'B')", True, True),
    ("extension_abc_xtsSourceObjectId eq 'src-1'", True, False),
    ("(userType eq 'Guest' or accountEnabled eq true) and not(mail eq null)", True, True),
])
def test_documented_filters(flt, expected, advanced):
    q = parse_filter(flt, PROPS)
    assert q.predicate(ANA) is expected
    assert q.advanced is advanced


@pytest.mark.parametrize("flt", ["", "displayName", "displayName eq", "displayName eq 'x' and",
                                 "(displayName eq 'x'", "startswith(displayName)", "foo eq 1",
                                 "displayName like 'x'", "displayName eq 'unterminated", "mail in ()",
                                 "otherMails/all(x:x eq 'a')", "displayName eq 'a' 'b'"])
def test_malformed_filters_raise_odata_error(flt):
    with pytest.raises(ODataError):
        parse_filter(flt, PROPS)


def test_select_is_canonicalised_and_checked():
    assert parse_select("DisplayName, mail,displayName", PROPS) == ["displayName", "mail"]
    assert parse_select(None, PROPS) is None
    with pytest.raises(ODataError, match="favouriteColour"):
        parse_select("id,favouriteColour", PROPS)


def escape(value: str) -> str:
    return value.replace("'", "''")


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=0, max_size=40))
def test_any_escaped_string_literal_round_trips(value):
    q = parse_filter(f"displayName eq '{escape(value)}'", PROPS)
    assert q.predicate({"displayName": value})
    assert q.lookup == ("displayName", value)
    assert not q.predicate({"displayName": value + "x"})


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_arbitrary_text_never_crashes_the_parser(text):
    try:
        q = parse_filter(text, PROPS)
    except ODataError:
        return
    assert isinstance(q.predicate(ANA), bool)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(PROPS - {"otherMails"})), st.text(max_size=10))
def test_ne_is_the_negation_of_eq(prop, value):
    user = {**ANA}
    eq = parse_filter(f"{prop} eq '{escape(value)}'", PROPS).predicate(user)
    ne = parse_filter(f"{prop} ne '{escape(value)}'", PROPS).predicate(user)
    notq = parse_filter(f"not({prop} eq '{escape(value)}')", PROPS).predicate(user)
    assert ne == notq == (not eq)
