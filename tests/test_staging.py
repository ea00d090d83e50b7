"""The pandera staging schema: rejects with reasons, partitions input exactly, respects the reject budget."""

from __future__ import annotations

import json
import uuid

import pandas as pd
import pytest
from hypothesis import given, settings
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
        con.executemany("INSERT INTO raw_users VALUES ('contoso', ?, ?, 'c', now())",
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
