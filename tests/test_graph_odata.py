"""graph.odata: escaping keeps every value one literal, whatever it contains."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xts_pipeline.graph import odata
from xts_pipeline.graph.odata import ODataFilterError, and_, eq, in_, needs_advanced, not_, or_, startswith
from xts_pipeline.sandbox import odata as sandbox_odata

# A tiny independent OData tokenizer: string literals, names/paths, numbers, punctuation.
_TOK = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<name>[A-Za-z_][A-Za-z0-9_/]*)|(?P<num>-?\d+)|(?P<p>[(),:]))")


def tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOK.match(text, pos)
        assert m and m.end() > pos, f"untokenizable at {pos}: {text!r}"
        kind = m.lastgroup
        raw = m.group(kind)
        out.append((kind, raw[1:-1].replace("''", "'") if kind == "str" else raw))
        pos = m.end()
    return out


safe_text = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=60)


def test_documented_examples():
    # Graph docs: "$filter=startswith(displayName,'a')", "mail eq 'x'", O'Neil escaping
    assert str(startswith("displayName", "a")) == "startswith(displayName,'a')"
    assert str(eq("mail", "o'neil@contoso.com")) == "mail eq 'o''neil@contoso.com'"
    assert str(in_("mail", ["a@x.com", "b@x.com"])) == "mail in ('a@x.com','b@x.com')"
    assert str(eq("accountEnabled", True)) == "accountEnabled eq true"
    assert str(eq("manager", None)) == "manager eq null"
    ext = "extension_0123456789abcdef0123456789abcdef_xtsSourceObjectId"
    assert str(eq(ext, "id")) == f"{ext} eq 'id'"


def test_injection_stays_a_literal():
    f = eq("mail", "x' or 1 eq 1")
    assert tokens(str(f)) == [("name", "mail"), ("name", "eq"), ("str", "x' or 1 eq 1")]


def test_precedence_is_kept_by_parentheses():
    f = and_(or_(eq("a", "1"), eq("b", "2")), eq("c", "3"))
    assert str(f) == "(a eq '1' or b eq '2') and c eq '3'"
    assert str(not_(f)) == "not ((a eq '1' or b eq '2') and c eq '3')"


@pytest.mark.parametrize("bad", ["mail eq 'x' or 1", "a b", "1abc", "", "a/", "a;b", "mail)", "mail\n"])
def test_bad_property_names_refused(bad):
    with pytest.raises(ODataFilterError, match="property"):
        eq(bad, "x")


def test_control_chars_and_raw_strings_refused():
    with pytest.raises(ODataFilterError, match="control character"):
        eq("mail", "a\nb")
    with pytest.raises(ODataFilterError):
        and_("mail eq 'x'")  # type: ignore[arg-type]
    with pytest.raises(ODataFilterError):
        in_("mail", [])


def test_needs_advanced_ignores_literals():
    assert needs_advanced("endswith(mail,'@x.com')")
    assert needs_advanced(str(odata.ne("city", None)))
    assert not needs_advanced(str(eq("displayName", "a ne b not endswith")))
    assert not needs_advanced(None)


@settings(max_examples=300, deadline=None)
@given(safe_text)
def test_eq_round_trips_any_value(value):
    assert tokens(str(eq("mail", value))) == [("name", "mail"), ("name", "eq"), ("str", value)]


@settings(max_examples=200, deadline=None)
@given(st.lists(safe_text, min_size=1, max_size=5), safe_text)
def test_compound_filters_keep_structure(values, other):
    f = and_(in_("mail", values), startswith("displayName", other))
    toks = tokens(str(f))
    strings = [v for k, v in toks if k == "str"]
    assert strings == [*values, other]
    # structure without the literals never depends on the values
    shape = [v if k != "str" else "S" for k, v in toks]
    assert shape == ["mail", "in", "(", *(["S", ","] * len(values))[:-1], ")", "and",
                     "startswith", "(", "displayName", ",", "S", ")"]


@settings(max_examples=200, deadline=None)
@given(safe_text, safe_text)
def test_server_side_parser_agrees(value, other):
    """The sandbox's independent $filter engine: a filter for `value` matches exactly that value."""
    q = sandbox_odata.parse_filter(str(eq("mail", value)), {"mail", "displayName"})
    assert q.predicate({"mail": value})
    assert q.predicate({"mail": other}) == (other.lower() == value.lower())


def test_needs_advanced_for_properties_whose_eq_is_an_advanced_query():
    """includes/filter-directory-objects.md marks eq on officeLocation, companyName, mobilePhone ... Advanced."""
    assert needs_advanced(str(eq("officeLocation", "London")))
    assert needs_advanced(str(eq("companyName", "Contoso")))
    assert not needs_advanced(str(eq("department", "officeLocation")))  # a literal, not the property
    assert needs_advanced(str(eq("displayName", None)))  # null comparisons are advanced


def test_in_takes_at_most_15_values_and_in_chunks_splits_by_15():
    """concepts/aad-advanced-queries.md: the `in` operator takes at most 15 values."""
    from xts_pipeline.graph.odata import in_chunks

    with pytest.raises(ODataFilterError, match="at most 15"):
        in_("id", [str(i) for i in range(16)])
    chunks = in_chunks("id", [str(i) for i in range(40)] + ["0"])
    assert [c.text.count(",") + 1 for c in chunks] == [15, 15, 10]
    assert in_chunks("id", []) == []
