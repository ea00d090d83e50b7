"""The adoption candidates (a target user whose mail, or whose #EXT# UPN's invited address, is a desired user's
address) are found through cheap keys first, and the invited address is computed only for the pairs a key
makes. The property: the same (source user, address, target user) triples as the former definition, which
computed the invited address of every target user, over UPNs built to break the keys (several #EXT#@, mixed
case, underscores, @ in the local part, no #EXT# at all).
"""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xts_pipeline import planner

# The former candidate_keys, with the invited address computed for every target user (the oracle).
_FORMER = f"""
t_addr AS (
  SELECT t.*, lower(t.mail) AS mail_l,
         CASE WHEN regexp_matches(t.user_principal_name, '^(.+)_([^_#@]+)#EXT#@', 'i')
              THEN lower(regexp_extract(t.user_principal_name, '^(.+)_([^_#@]+)#EXT#@', 1, 'i')) || '@' ||
                   lower(regexp_extract(t.user_principal_name, '^(.+)_([^_#@]+)#EXT#@', 2, 'i')) END AS ext_addr,
         {planner._EXTERNAL} AS external
  FROM t),
candidate_keys AS (
  SELECT d.source_object_id AS sid, d.addr, a.id AS tid_ FROM d JOIN t_addr a ON a.mail_l = d.addr WHERE a.external
  UNION
  SELECT d.source_object_id, d.addr, a.id FROM d JOIN t_addr a ON a.ext_addr = d.addr WHERE a.external)
"""  # noqa: S608 - module constants only

PIECES = st.sampled_from(["a", "B", "x", "_", "#EXT#@", "#ext#@", "#Ext#@", "@", "#", ".", "é", "İ", "dom.com"])
TEXT = st.lists(PIECES, min_size=0, max_size=6).map("".join)
DOMAIN = st.lists(st.sampled_from(["a", "B", "x", ".", "é", "İ", "dom.com"]), min_size=1, max_size=3).map("".join)
# local_domain#EXT#@rest as an invitation writes it (in any case), local and rest free to hold more of the same
INVITED = st.builds(lambda local, domain, sep, rest: f"{local}_{domain}{sep}{rest}",
                    TEXT, DOMAIN, st.sampled_from(["#EXT#@", "#ext#@", "#eXt#@"]), TEXT)


def _triples(con: duckdb.DuckDBPyConnection, ctes: str) -> list[tuple]:
    return con.execute(f"WITH {ctes} SELECT * FROM candidate_keys ORDER BY ALL").fetchall()  # noqa: S608


@pytest.mark.slow  # 200 examples of DuckDB queries: ~9 s, in make test-all
@settings(max_examples=200, deadline=None)
@given(users=st.lists(st.tuples(st.one_of(INVITED, TEXT), st.booleans(), st.booleans()), min_size=1, max_size=6),
       addrs=st.lists(TEXT, max_size=3), picks=st.sets(st.integers(0, 5), max_size=4))
def test_candidate_keys_equal_the_former_definition(users, addrs, picks):
    con = duckdb.connect()
    con.execute("CREATE TABLE t (id VARCHAR, user_principal_name VARCHAR, mail VARCHAR, creation_type VARCHAR, "
                "user_type VARCHAR, external_user_state VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?, 'Member', NULL)",
                    [[f"t{i}", upn, upn.lower() if with_mail else None, "Invitation" if invited else None]
                     for i, (upn, with_mail, invited) in enumerate(users)])
    con.execute("CREATE TABLE d (source_object_id VARCHAR, addr VARCHAR)")
    for i, a in enumerate(addrs):
        con.execute("INSERT INTO d VALUES (?, ?)", [f"s{i}", a.lower()])
    # desired users with the invited address of some target users, as the former definition reads it: matches
    con.execute(f"INSERT INTO d WITH {_FORMER.split('candidate_keys AS')[0].rstrip().rstrip(',')} "  # noqa: S608
                "SELECT 'm' || id, ext_addr FROM t_addr WHERE ext_addr IS NOT NULL AND list_contains(?, id)",
                [[f"t{i}" for i in picks]])
    current = ",\n".join(text for name, text in planner._PLAN_CTE_LIST if name in ("t_keys", "candidate_keys"))
    assert _triples(con, current) == _triples(con, _FORMER)
