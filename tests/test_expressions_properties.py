"""Hypothesis properties of the expression language: no crash but ExpressionError, and algebraic
relations between functions (case mapping, Split/Join, Left/Mid, dates, escapes)."""

from __future__ import annotations

import base64
import unicodedata
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xts_pipeline.expressions import FUNCTIONS, ExpressionError, compile, evaluate
from xts_pipeline.expressions.diacritics import _SINGLES
from xts_pipeline.expressions.functions import _SEPARATOR_CATEGORIES

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ATTR_NAMES = ["a", "b", "mail", "proxyAddresses", "extension_x_y"]
attr_values = st.one_of(
    st.none(), st.text(max_size=12), st.integers(-10**6, 10**6), st.booleans(),
    st.lists(st.text(max_size=6), max_size=3),
    st.sampled_from(["2021-08-24", "8/25/2021 5:41:18 PM", "129699324000000000", "True", "0", "&HF"]),
)
attrs_strategy = st.fixed_dictionaries({}, optional={n: attr_values for n in ATTR_NAMES})


def _escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"')


leaf = st.one_of(
    st.sampled_from(ATTR_NAMES).map(lambda n: f"[{n}]"),
    st.text(max_size=8).map(lambda s: f'"{_escape(s)}"'),
    st.integers(-300, 300).map(str),
    st.sampled_from(["", "vbTextCompare", "True", '"yyyy-MM-dd"', '"d"', '"ww"', '"(?<g>a+)"', '"g"', '"${g}"',
                     "&HFF", '"2021-08-24"', '"[a-z]*"']),
)


def _call(children):
    names = st.sampled_from(sorted(FUNCTIONS) + ["Joinn", "foo"])
    args = st.lists(children, max_size=7).map(lambda xs: ", ".join(xs))
    return st.builds(lambda n, a: f"{n}({a})", names, args)


def _compare(children):
    return st.builds(lambda a, op, b: f"{a}{op}{b}", children, st.sampled_from(["=", "<>", ">", ">=", "<", "<="]),
                     children)


expressions = st.recursive(leaf, lambda ch: st.one_of(_call(ch), _compare(ch)), max_leaves=12)


@FAST
@given(st.text(max_size=60))
def test_random_text_raises_only_expression_errors(text):
    try:
        compile(text).evaluate({})
    except ExpressionError:
        pass


@FAST
@given(expressions, attrs_strategy)
def test_random_asts_raise_only_expression_errors(expr, attrs):
    try:
        compiled = compile(expr)
    except ExpressionError as exc:
        assert exc.line is not None and exc.column is not None
        return
    try:
        compiled.evaluate(attrs)
    except ExpressionError as exc:
        assert exc.line >= 1 and exc.column >= 1


ascii_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30)


@FAST
@given(ascii_text)
def test_lower_of_upper_is_lower_for_ascii(s):
    attrs = {"a": s}
    assert evaluate("ToLower(ToUpper([a]))", attrs) == evaluate("ToLower([a])", attrs) == s.lower()


@FAST
@given(st.text(max_size=30))
def test_case_mapping_keeps_length_and_is_idempotent(s):
    low = evaluate("ToLower([a])", {"a": s})
    up = evaluate("ToUpper([a])", {"a": s})
    assert len(low) == len(up) == len(s)  # .NET maps one character to one character
    assert evaluate("ToUpper([a])", {"a": up}) == up


@FAST
@given(st.lists(st.text(alphabet="abcXYZ09._@", max_size=8), min_size=1, max_size=6))
def test_join_split_roundtrip(items):
    joined = ",".join(items)
    assert evaluate('Split([a], ",")', {"a": joined}) == items
    assert evaluate('Join(",", Split([a], ","))', {"a": joined}) == ",".join(i for i in items if i)


@FAST
@given(st.text(max_size=40))
def test_string_literal_escape_roundtrip(s):
    assert evaluate(f'Append("{_escape(s)}", "")', {}) == s


@FAST
@given(st.text(max_size=20), st.integers(0, 25))
def test_left_plus_mid_is_whole(s, n):
    assert evaluate("Append(Left([a], [n]), Mid([a], [m], 1000))", {"a": s, "n": n, "m": n + 1}) == s


@FAST
@given(st.text(max_size=30))
def test_normalize_diacritics_removes_table_characters(s):
    out = evaluate("NormalizeDiacritics([a])", {"a": s})
    assert not any(ord(c) in _SINGLES for c in out)
    if s.isascii():
        assert out == s


@FAST
@given(st.text(max_size=30))
def test_base64_is_utf16le(s):
    out = evaluate("ConvertToBase64([a])", {"a": s})
    assert base64.b64decode(out).decode("utf-16-le", errors="surrogatepass") == s


dates = st.datetimes(min_value=datetime(1700, 1, 1), max_value=datetime(9000, 1, 1)).map(
    lambda d: d.replace(microsecond=0, tzinfo=UTC))


@FAST
@given(dates, st.integers(-5000, 5000), st.sampled_from(["d", "ww", "m", "yyyy", "h", "n", "s"]))
def test_datediff_inverts_dateadd(start, n, interval):
    iso = start.strftime("%Y-%m-%dT%H:%M:%SZ")
    expr = f'DateDiff("{interval}", CDate([a]), DateAdd("{interval}", {n}, CDate([a])))'
    try:
        out = evaluate(expr, {"a": iso})
    except ExpressionError:
        return  # result outside years 1-9999
    if interval in ("m", "yyyy") and start.day > 28:
        assert abs(out - n) <= 1  # month-end clamping (Jan 31 + 1 month = Feb 28)
    else:
        assert out == n


@FAST
@given(dates)
def test_numfromdate_datefromnum_roundtrip(d):
    iso = d.strftime("%Y-%m-%dT%H:%M:%SZ")
    ticks = evaluate("NumFromDate([a])", {"a": iso})
    assert evaluate("DateFromNum([t])", {"t": ticks}) == evaluate("CDate([a])", {"a": iso})
    assert ticks == int((d - datetime(1601, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1)) * 10


@FAST
@given(dates, st.sampled_from(["yyyy-MM-dd HH:mm:ss", "M/d/yyyy h:mm:ss tt", "yyyyMMddHHmmss.fZ", "dd.MM.yyyy HH:mm:ss",
                               "MMMM d, yyyy hh:mm:ss tt", "yyyy-MM-ddTHH:mm:sszzz"]))
def test_formatdatetime_roundtrip(d, fmt):
    d = d.replace(year=max(d.year, 1000))
    text = evaluate(f'FormatDateTime([a], , "yyyy-MM-ddTHH:mm:ssZ", "{fmt}")', {"a": d.strftime("%Y-%m-%dT%H:%M:%SZ")})
    back = evaluate(f'FormatDateTime([a], , "{fmt}", "yyyy-MM-ddTHH:mm:ss")', {"a": text})
    assert back == d.strftime("%Y-%m-%dT%H:%M:%S")


@FAST
@given(st.text(alphabet="abc ,!", max_size=25), st.integers(1, 6))
def test_word_returns_a_delimiter_free_piece(s, n):
    w = evaluate('Word([a], [n], " ,!")', {"a": s, "n": n})
    assert not set(w) & set(" ,!") and (w == "" or w in s)


@FAST
@given(st.text(max_size=25))
def test_pcase_keeps_length_and_separators_and_is_idempotent(s):
    out = evaluate("PCase([a])", {"a": s})
    assert len(out) == len(s)
    assert all(o == c for o, c in zip(out, s, strict=True) if unicodedata.category(c) in _SEPARATOR_CATEGORIES)
    assert evaluate("PCase([a])", {"a": out}) == out
