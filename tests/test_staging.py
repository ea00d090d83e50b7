"""The pandera staging schema: rejects with reasons, partitions input exactly, respects the reject budget."""

from __future__ import annotations

import json
import uuid

import duckdb
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from xts_pipeline import staging, store

# The user from Microsoft Graph's "Get user" documentation example (v1.0), trimmed to the staged fields.
GRAPH_DOC_USER = {
    "id": "87d349ed-44d7-43e1-9a83-5f2406dee5bd",
    "businessPhones": ["+1 425 555 0109"],
    "displayName": "Adele Vance",
    "givenName": "Adele",
    "jobTitle": "Retail Manager",
    "mail": "AdeleV@contoso.com",
    "officeLocation": "18/2111",
    "surname": "Vance",
    "userPrincipalName": "AdeleV@contoso.com",
    "userType": "Member",
    "accountEnabled": True,
}


def stage(db, users: list[dict], fraction: float = 0.5) -> staging.StageResult:
    with store.connect(db) as con:
        con.execute("DELETE FROM raw_users")
        con.executemany("INSERT INTO raw_users (tenant, id, data, seen_cycle, updated_at) VALUES ('contoso', ?, ?, 'c', now())",
                        [[u.get("id") or str(uuid.uuid4()), json.dumps(u)] for u in users])
    return staging.stage_tenant(db, "contoso", fraction)


def test_documented_user_is_staged(tmp_path):
    db = tmp_path / "s.duckdb"
    res = stage(db, [GRAPH_DOC_USER])
    assert (res.staged, res.rejected) == (1, 0)
    with store.connect(db) as con:
        row = con.execute("SELECT user_principal_name, mail, account_enabled FROM staged_users").fetchone()
    assert row == ("AdeleV@contoso.com", "AdeleV@contoso.com", True)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"id": "not-a-guid"}, "not a GUID"),
        ({"userPrincipalName": "no-at-sign"}, "not a UPN"),
        ({"userPrincipalName": "a" * 65 + "@contoso.com"}, "not a UPN"),
        ({"mail": "two@@contoso.com"}, "not an e-mail"),
        ({"displayName": "Adele\x07Vance"}, "control character"),
        ({"jobTitle": "x" * 129}, "length must be 1..128"),
        ({"userType": "Alien"}, "Member or Guest"),
        ({"displayName": None}, "display_name"),
    ],
)
def test_invalid_rows_are_rejected_with_reasons(tmp_path, change, reason):
    db = tmp_path / "s.duckdb"
    good = {**GRAPH_DOC_USER, "id": str(uuid.uuid4()), "userPrincipalName": "ok@contoso.com"}
    bad = {**GRAPH_DOC_USER, **change}
    res = stage(db, [good, bad])
    assert (res.staged, res.rejected) == (1, 1)
    with store.connect(db) as con:
        reasons = con.execute("SELECT reasons FROM rejected_users").fetchone()[0]
        staged = con.execute("SELECT id FROM staged_users").fetchall()
    assert reason in reasons
    assert staged == [(good["id"],)]


def test_too_many_rejects_keep_previous_snapshot(tmp_path):
    db = tmp_path / "s.duckdb"
    stage(db, [GRAPH_DOC_USER])
    bad = [{**GRAPH_DOC_USER, "id": str(uuid.uuid4()), "mail": "broken"} for _ in range(3)]
    with pytest.raises(staging.StagingBlocked, match="contoso.*max_reject_fraction"):
        stage(db, [GRAPH_DOC_USER, *bad], fraction=0.5)
    with store.connect(db) as con:
        assert con.execute("SELECT count(*) FROM staged_users").fetchone()[0] == 1
        assert con.execute("SELECT count(*) FROM rejected_users").fetchone()[0] == 3


text = st.one_of(st.none(), st.text(max_size=140))


@pytest.mark.slow  # seconds per example: in `make test-all`, not the fast loop
@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.fixed_dictionaries({
    "id": st.one_of(st.uuids().map(str), st.text(max_size=40)),
    "user_principal_name": st.one_of(st.emails(), st.text(max_size=120)),
    "mail": st.one_of(st.none(), st.emails(), st.text(max_size=30)),
    "user_type": st.sampled_from(["Member", "Guest", "member", "", "x"]),
    "creation_type": st.sampled_from([None, "Invitation"]),
    "account_enabled": st.sampled_from([True, False, None]),
    "display_name": st.one_of(st.text(min_size=1, max_size=300), st.none()),
    **{col: text for _, (col, _) in staging.TEXT_COLUMNS.items() if col != "display_name"},
}), max_size=15))
def test_property_validation_partitions_input(rows):
    """Every row ends up in exactly one of valid/rejected, every reject has a reason, valid rows pass the schema."""
    df = pd.DataFrame(rows, columns=["id", "user_principal_name", "mail", "user_type", "creation_type",
                                     "account_enabled", *[c for _, (c, _) in staging.TEXT_COLUMNS.items()]])
    df["account_enabled"] = df["account_enabled"].astype("boolean")
    df = df.astype({c: object for c in df.columns if c != "account_enabled"})
    valid, rejected = staging.validate_users(df)
    assert len(valid) + len(rejected) == len(df)
    assert set(valid.index).isdisjoint(rejected.index)
    assert all(isinstance(r, str) and r for r in rejected["reasons"])
    if len(valid):
        staging.user_schema().validate(valid)


def test_incremental_staging_handles_changed_and_removed_rows(tmp_path):
    db = tmp_path / "s.duckdb"
    users = [{**GRAPH_DOC_USER, "id": str(uuid.uuid4()), "userPrincipalName": f"u{i}@contoso.com"} for i in range(5)]
    first = stage(db, users)
    assert (first.staged, first.rejected) == (5, 0)
    with store.connect(db) as con:
        con.execute("UPDATE raw_users SET data = json_merge_patch(data, '{\"mail\": \"broken\"}'), "
                    "updated_at = now() + INTERVAL 1 SECOND WHERE id = ?", [users[0]["id"]])
        con.execute("DELETE FROM raw_users WHERE id = ?", [users[1]["id"]])
    res = staging.stage_tenant(db, "contoso", 0.5)
    assert (res.total, res.staged, res.rejected) == (4, 3, 1)
    assert [r["id"] for r in res.sample_rejects] == [users[0]["id"]]  # only the changed row was validated
    with store.connect(db) as con:
        staged = {r[0] for r in con.execute("SELECT id FROM staged_users").fetchall()}
    assert staged == {u["id"] for u in users[2:]}


# Characters where Python's `re` and DuckDB's RE2 disagree or a check sits on an edge: control characters, a
# trailing newline (`$` accepts it), Unicode spaces (`\s` in `re` only), non-ASCII letters, mail specials.
_TRICKY = st.text(alphabet=st.sampled_from(list("aZ09.-_@\"(),:;<>[]\\ \t\n\x00\x1f\x7f\xa0\u2028é👍#")),
                  min_size=0, max_size=12)


_EDGES = ["a" * 64 + "@contoso.com", "a" * 65 + "@contoso.com", "a b@contoso.com", "a\xa0b@contoso.com",
          "é@contoso.com", 'a"b@contoso.com', "a(b)@contoso.com", "a@contoso.com\n", "a@-contoso.com", "a@contoso",
          "x" * 256, "x" * 257, "1" * 16, "1" * 17, "", "a\n", "a\nb", "a\x00", "a\x7f", "a\u2028", "Adèle", None,
          "Member", "Guest", "member", "87d349ed-44d7-43e1-9a83-5f2406dee5bd\n"]
_FIELDS = ["id", "userPrincipalName", "mail", "userType", "creationType", "displayName", "employeeId", "jobTitle",
           "mailNickname"]
# Users one or two edits away from a valid one: each edit puts an edge case or a tricky string in one field.
_USERS = st.lists(st.tuples(st.uuids().map(str), st.lists(st.tuples(
    st.sampled_from(_FIELDS), st.one_of(st.sampled_from(_EDGES), _TRICKY, _TRICKY.map(lambda t: t + "@contoso.com"))),
    max_size=2)), min_size=1, max_size=12, unique_by=lambda u: u[0]).map(
    lambda users: [{**GRAPH_DOC_USER, "id": uid, **dict(edits)} for uid, edits in users])


@pytest.mark.slow  # a DuckDB query and a pandera run per example: ~15 s
@settings(max_examples=100, deadline=None)
@given(_USERS)
def test_property_precheck_never_passes_a_reject_and_keeps_the_split(rows):
    """DuckDB's pre-check marks only rows the pandera schema accepts, and the split it gives is the schema's."""
    rows = list({u["id"]: u for u in rows if u["id"]}.values())  # raw_users' key: one row per id
    assume(rows)
    con = duckdb.connect()
    con.execute(next(stmt for stmt in store.SCHEMA if "raw_users (" in stmt))
    con.executemany("INSERT INTO raw_users (tenant, id, data, seen_cycle, updated_at) VALUES ('t', ?, ?, 'c', now())",
                    [[u["id"], json.dumps({k: v for k, v in u.items() if v is not None})] for u in rows])
    df = staging.raw_frame(con, "t", attrs=False, precheck=True)
    frame, surely = df.drop(columns="surely_valid"), df["surely_valid"]
    valid, rejected = staging.validate_users(frame)
    assert not set(frame.loc[surely.to_numpy(dtype=bool), "id"]) & set(rejected["id"])
    fast_valid, fast_rejected = staging.validate_users(frame, surely)
    pd.testing.assert_frame_equal(fast_valid, valid)
    pd.testing.assert_frame_equal(fast_rejected, rejected)


def test_precheck_passes_ordinary_users(tmp_path):
    """The pre-check is worth running: a directory of ordinary users skips pandera entirely."""
    db = tmp_path / "s.duckdb"
    users = [{**GRAPH_DOC_USER, "id": str(uuid.uuid4()), "displayName": f"Adele Vance {i}"} for i in range(50)]
    users[3]["displayName"] = "Adèle Vance"  # non-ASCII text columns are checked in DuckDB too
    with store.connect(db) as con:
        con.executemany("INSERT INTO raw_users (tenant, id, data, seen_cycle, updated_at) VALUES ('contoso', ?, ?, 'c', now())",
                        [[u["id"], json.dumps(u)] for u in users])
        df = staging.raw_frame(con, "contoso", attrs=False, precheck=True)
    assert df["surely_valid"].all()


@pytest.mark.parametrize("field, value", [("userPrincipalName", "adele@contoso.com\n"), ("mail", "adele@contoso.com\n"),
                                          ("id", "1f9a6bd2-7a8e-4bd6-9f57-0e6f1b1a4c2e\n"),
                                          ("displayName", "Adele Vance\n"), ("creationType", "Invitation\n")])
def test_a_trailing_newline_is_rejected(tmp_path, field, value):
    """Entra: "Any invalid characters (for example, white space, line break, etc.) present in the on-premises
    UserPrincipalName invalidates the synchronized UPN value." (hybrid/connect/plan-connect-userprincipalname.md)
    Python's `$` matches before a final newline; the schema anchors with `\\Z`, so such a value is refused."""
    user = {**GRAPH_DOC_USER, field: value}
    frame = pd.DataFrame([{"id": user["id"], "user_principal_name": user["userPrincipalName"], "mail": user["mail"],
                           "user_type": "Member", "creation_type": user.get("creationType"), "account_enabled": True,
                           "display_name": user["displayName"]}])
    valid, rejected = staging.validate_users(frame)
    assert valid.empty and len(rejected) == 1, rejected.to_dict("records")
