"""The spooled, set-based write of a delta round gives raw_users exactly what one statement per page gave.

api/user-delta.md: "Updated instances are represented by their id with at least the updated properties" and
"A single entity can be contained multiple times in the response": a user may be patched, removed and
re-added across the pages of one round, and each page's items are merged in order onto what is held.
The oracle below is the per-page write the extraction used before it spooled rounds (one DELETE and one
INSERT ... ON CONFLICT per page); the property: both leave the same rows, byte for byte.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xts_pipeline import extract, store

TENANT = "src"
IDS = [f"u{i}" for i in range(6)]
VALUES = st.one_of(st.none(), st.sampled_from(["a", "b", ""]), st.integers(0, 3),
                   st.fixed_dictionaries({"id": st.sampled_from(["m1", "m2"])}))
PATCH = st.dictionaries(st.sampled_from(["jobTitle", "department", "manager", "city"]), VALUES, max_size=3)


@st.composite
def items(draw) -> dict:
    uid = draw(st.sampled_from(IDS))
    if draw(st.integers(0, 4)) == 0:
        return {"id": uid, "@removed": {"reason": draw(st.sampled_from(["changed", "deleted"]))}}
    item = {"id": uid, **draw(PATCH)}
    if draw(st.booleans()):
        item["manager@delta"] = draw(st.sampled_from([
            [{"@odata.type": "#microsoft.graph.user", "id": "m3"}], [{"id": "m1", "@removed": {"reason": "deleted"}}],
            []]))
    return item


def _old_write_page(db, tenant: str, cycle_id: str, page: list[dict], merge: bool) -> None:
    """The former per-page write (the oracle)."""
    upserts, removed = extract.fold_page(page)
    gone = sorted(removed)
    ids = list(upserts)
    table = pa.table({"id": pa.array(ids, pa.string()),
                      "data": pa.array([orjson.dumps(upserts[i]).decode() for i in ids], pa.string())})
    update = "json_merge_patch(raw_users.data, excluded.data)" if merge else (
        "CASE WHEN raw_users.seen_cycle = excluded.seen_cycle THEN json_merge_patch(raw_users.data, excluded.data) "
        "ELSE excluded.data END")
    with store.connect(db) as con:
        con.execute("BEGIN")
        if gone:
            con.execute("DELETE FROM raw_users WHERE tenant = ? AND list_contains(?, id)", [tenant, gone])
        if len(table):
            con.register("page_tbl", table)
            con.execute(
                f"""INSERT INTO raw_users SELECT ?, id, CAST(data AS JSON), ?, now() FROM page_tbl
                    ON CONFLICT (tenant, id) DO UPDATE SET data = {update},
                    seen_cycle = excluded.seen_cycle, updated_at = excluded.updated_at""",  # noqa: S608
                [tenant, cycle_id])
            con.unregister("page_tbl")
        con.execute("COMMIT")


def _seed(db, stored: dict[str, tuple[dict, str]]) -> None:
    with store.connect(db) as con:
        for uid, (data, seen) in stored.items():
            con.execute("INSERT INTO raw_users VALUES (?, ?, CAST(? AS JSON), ?, now())",
                        [TENANT, uid, orjson.dumps(data).decode(), seen])


def _rows(db) -> list[tuple]:
    with store.connect(db) as con:
        return con.execute("SELECT id, CAST(data AS VARCHAR), seen_cycle FROM raw_users WHERE tenant = ? ORDER BY id",
                           [TENANT]).fetchall()


@pytest.mark.slow  # a few DuckDB files per example: tens of seconds
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stored=st.dictionaries(st.sampled_from(IDS), st.tuples(PATCH, st.sampled_from(["old", "c1"])), max_size=4),
       pages=st.lists(st.lists(items(), min_size=0, max_size=6), min_size=1, max_size=4),
       merge_pages=st.integers(0, 4), replace_up_to=st.sampled_from([0.0, 1e9]))
def test_spooled_round_equals_per_page_writes(stored, pages, merge_pages, replace_up_to):
    """Pages [0, merge_pages) are incremental (merged onto what is held), the rest full (a resync mid-round).

    Both ways of replacing stored rows are checked: the in-place upsert (replace_up_to 0) and, for a round
    over a store that holds rows, delete + insert (replace_up_to 1e9).
    """
    default, extract.DELETE_INSERT_UP_TO = extract.DELETE_INSERT_UP_TO, replace_up_to
    try:
        _check_round(stored, pages, merge_pages)
    finally:
        extract.DELETE_INSERT_UP_TO = default


def _check_round(stored, pages, merge_pages) -> None:
    with tempfile.TemporaryDirectory() as d:
        old_db, new_db = Path(d) / "old.duckdb", Path(d) / "new.duckdb"
        stored = {uid: ({"id": uid, **data}, seen) for uid, (data, seen) in stored.items()}
        _seed(old_db, stored)
        _seed(new_db, stored)
        spool = extract._Spool(new_db)
        try:
            for i, page in enumerate(pages):
                _old_write_page(old_db, TENANT, "c1", page, merge=i < merge_pages)
                spool.add(page, merge=i < merge_pages)
            spool.close()
            with store.connect(new_db) as con:
                extract._apply_spool(con, spool, TENANT, "c1")
        finally:
            spool.discard()
        assert not spool.path.exists()
        assert _rows(new_db) == _rows(old_db)


def test_a_consumer_that_stops_early_never_hangs_the_page_reader():
    """The reader has read every page and waits to say so into a full queue when the consumer fails (a full
    disk while spooling, say): closing the round must end the reader, not wait on it forever."""
    import threading
    import time

    closed = threading.Event()

    def consume() -> None:
        rounds = extract._prefetched(iter([[{"id": "a"}], [{"id": "b"}], [{"id": "c"}]]), lambda: False, depth=2)
        next(rounds)
        time.sleep(0.3)  # the reader fills the queue with the other two pages, then waits to put its end mark
        rounds.close()  # what an exception in the consumer's loop does: the generator's finally runs
        closed.set()

    worker = threading.Thread(target=consume, daemon=True)
    worker.start()
    assert closed.wait(5), "closing the round waited on the page reader forever"
