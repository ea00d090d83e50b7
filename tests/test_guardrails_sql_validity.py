"""The value-validity guardrail's SQL pre-pass (`values_ok_sql`) never changes a verdict.

DuckDB marks the plan rows whose JSON text cannot hold a refused value, and `find_invalid_values` skips them;
every other row is judged in Python as before. The SQL is checked here against the Python path on random plans
(non-ASCII, confusables, bidi and control characters, quotes, backslashes, strings either side of every limit),
on the JSON text DuckDB stores for them (compact, or as a client may send it, with spaces and newlines).
"""

from __future__ import annotations

import json
import string

import duckdb
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from xts_pipeline.guardrails.rows import parsed
from xts_pipeline.guardrails.validity import (
    EXTENSION_MAX_LENGTH,
    GENERIC_MAX_LENGTH,
    MAX_LENGTHS,
    find_invalid_values,
    values_ok_sql,
)

ATTRS = (*MAX_LENGTHS, "mail", "userPrincipalName", "otherMails", "businessPhones", "extension_abc_x",
         "onPremisesExtensionAttributes", "passwordProfile", "accountEnabled", "preferredLanguage")
LIMITS = sorted({*MAX_LENGTHS.values(), EXTENSION_MAX_LENGTH, GENERIC_MAX_LENGTH})
CHARS = (string.ascii_letters + string.digits + " .,-_@#\"\\/" + "\x00\x07\t\n\x1f\x7f\x85\u2028"
         + "еоаıßｍᴍ\u200b\u202e\u2066\u3164éŁ\uffff")
near_limit = st.sampled_from(LIMITS).flatmap(
    lambda n: st.sampled_from([n - 1, n, n + 1]).map(lambda k: "a" * k))
text = st.text(alphabet=CHARS, max_size=20) | st.text(alphabet="ab", max_size=8) | near_limit
scalar = st.none() | st.booleans() | st.integers() | text
value = scalar | st.lists(scalar, max_size=3) | st.dictionaries(st.sampled_from(["extensionAttribute1", "city"]),
                                                                scalar, max_size=2)
record = st.dictionaries(st.sampled_from(ATTRS), value, max_size=6)
change = st.fixed_dictionaries({"property": st.sampled_from(ATTRS), "new": value},
                               optional={"old": value})
row = st.fixed_dictionaries({
    "action": st.sampled_from(["create", "adopt", "restore", "update", "disable", "delete"]),
    "desired": record, "changes": st.lists(change, max_size=3)})


def _text(value: object, spaced: bool) -> str:
    if spaced:
        return json.dumps(value, indent=1, ensure_ascii=False)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _plan(rows: list[dict], spaced: bool) -> list[dict]:
    """The rows as load_pair_inputs reads them: JSON text out of DuckDB JSON columns, plus `values_ok`."""
    con = duckdb.connect()
    con.execute("CREATE TABLE plan (source_object_id VARCHAR, change_id VARCHAR, action VARCHAR, desired JSON, "
                "changes JSON)")
    con.executemany("INSERT INTO plan (source_object_id, change_id, action, desired, changes) VALUES (?, ?, ?, ?, ?)",
                    [[f"s{i}", f"c{i}", r["action"], _text(r["desired"], spaced), _text(r["changes"], spaced)]
                     for i, r in enumerate(rows)])
    ok = values_ok_sql("p.action", "CAST(p.desired AS VARCHAR)", "CAST(p.changes AS VARCHAR)")
    cur = con.execute(f"SELECT p.source_object_id, p.change_id, p.action, CAST(p.desired AS VARCHAR) AS desired, "  # noqa: S608
                      f"CAST(p.changes AS VARCHAR) AS changes, NULL AS current, {ok} AS values_ok "
                      f"FROM plan p ORDER BY p.change_id")
    cols = [c[0] for c in cur.description]
    out = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    con.close()
    return sorted(out, key=lambda r: int(r["change_id"][1:]))


@pytest.mark.slow  # seconds of examples: in `make test-all`, not the fast loop
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(row, min_size=1, max_size=5), st.booleans())
@example([{"action": "create", "desired": {"employeeId": "E" * 17}, "changes": []}], False)
@example([{"action": "create", "desired": {"businessPhones": ["1", "2"]}, "changes": []}], True)
@example([{"action": "update", "desired": {}, "changes": [{"property": "employeeId", "new": "E" * 17}]}], False)
@example([{"action": "create", "desired": {"jobTitle": {"city": "a" * 200}}, "changes": []}], False)
@example([{"action": "create", "desired": {"displayName": "Megan\u202eBowen"}, "changes": []}], False)
@example([{"action": "create", "desired": {"displayName": "Megan\x7fBowen"}, "changes": []}], False)
def test_sql_prepass_gives_the_python_verdicts(rows, spaced):
    plan = _plan(rows, spaced)
    hinted = parsed(plan)
    reference = parsed([{k: v for k, v in r.items() if k != "values_ok"} for r in plan])
    assert find_invalid_values(hinted) == find_invalid_values(reference)
    for r in hinted:
        if r["values_ok"]:
            assert find_invalid_values([{**r, "values_ok": None}]) == [], r


def test_plain_rows_are_decided_in_sql():
    """The pre-pass must fire on the common row, or it saves nothing (and the property above proves little)."""
    person = {"displayName": "Megan Bowen", "givenName": "Megan", "surname": "Bowen", "mail": "megan@fab.com",
              "userPrincipalName": "megan@fab.com", "employeeId": "E" * 16, "businessPhones": ["+1 555 0100"],
              "accountEnabled": True, "streetAddress": "a" * 256}
    rows = [{"action": "create", "desired": person, "changes": []},
            {"action": "update", "desired": person, "changes": [{"property": "jobTitle", "new": "Analyst"}]},
            {"action": "create", "desired": {**person, "employeeId": "E" * 17}, "changes": []},
            {"action": "create", "desired": {**person, "surname": "Bowen\u0435"}, "changes": []}]
    assert [r["values_ok"] for r in _plan(rows, False)] == [True, True, False, False]


@pytest.mark.parametrize("raw", ['{"employeeId": "E1", "employeeId": "' + "x" * 17 + '"}',
                                 '{"city": "Seattle", "city": "' + "x" * 129 + '"}'])
def test_a_repeated_key_is_not_hidden_by_its_first_value(raw):
    """orjson keeps a repeated key's last value; the pre-pass must not judge the first one only."""
    con = duckdb.connect()
    ok = con.execute(f"SELECT {values_ok_sql(repr('create'), '$raw', repr('[]'))}", {"raw": raw}).fetchone()[0]  # noqa: S608
    assert ok is False
    rows = parsed([{"source_object_id": "s1", "action": "create", "desired": raw, "changes": "[]", "values_ok": ok}])
    assert len(find_invalid_values(rows)) == 1
