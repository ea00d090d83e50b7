"""One definition of "external": the Python predicate and the SQL fragment agree, and the loop guard,
scoping and the planner all use it."""

from __future__ import annotations

import duckdb
import pytest

from xts_pipeline import planner
from xts_pipeline.external import external_sql, is_external
from xts_pipeline.guardrails.sources import loop_guard
from xts_pipeline.scoping import is_internal_member

CASES = [
    ({"userType": "Member", "creationType": None, "userPrincipalName": "a@src.example"}, False),
    ({"userType": "Guest", "userPrincipalName": "a@src.example"}, True),
    ({"userType": "Member", "creationType": "Invitation", "userPrincipalName": "a@src.example"}, True),
    ({"userType": "Member", "userPrincipalName": "a_x.example#EXT#@src.example"}, True),
    # "Invite internal users to B2B collaboration": creationType stays null, own UPN, userType Member,
    # externalUserState becomes PendingAcceptance/Accepted (Graph user resource, externalUserState).
    ({"userType": "Member", "creationType": None, "userPrincipalName": "a@src.example",
      "externalUserState": "Accepted"}, True),
    ({"userType": "Member", "userPrincipalName": "a@src.example", "externalUserState": "PendingAcceptance"}, True),
]


@pytest.mark.parametrize("user,external", CASES)
def test_python_and_sql_agree(user: dict, external: bool) -> None:
    assert is_external(user) is external
    assert is_internal_member(user) is (not external)
    con = duckdb.connect()
    got = con.execute(f"SELECT {external_sql('t')} FROM (SELECT ?::VARCHAR AS creation_type, ?::VARCHAR AS user_type, "  # noqa: S608
                      "?::VARCHAR AS user_principal_name, ?::VARCHAR AS external_user_state) t",
                      [user.get("creationType"), user.get("userType"), user.get("userPrincipalName"),
                       user.get("externalUserState")]).fetchone()[0]
    assert got is external


def test_snake_case_rows_and_loop_guard() -> None:
    rows = [{"id": "s1", "user_type": "Member", "user_principal_name": "a@x", "external_user_state": "Accepted"},
            {"id": "s2", "user_type": "Member", "user_principal_name": "b@x"}]
    assert loop_guard(rows).blocked_user_ids == {"s1"}


def test_planner_uses_the_shared_fragment() -> None:
    assert planner._EXTERNAL == external_sql("t")
    with pytest.raises(ValueError):
        external_sql("t; DROP TABLE x")
