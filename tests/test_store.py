"""The DuckDB store: schema on first use, short connections, and one writer across processes."""

from __future__ import annotations

import multiprocessing as mp

import pytest

from xts_pipeline import store


def test_schema_has_every_designed_table(tmp_path):
    db = tmp_path / "x.duckdb"
    store.init(db)
    with store.connect(db) as con:
        names = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    designed = {"delta_cursors", "raw_users", "staged_users", "rejected_users", "target_users", "target_groups",
                "target_group_members", "target_policy", "desired_users", "plan", "write_journal",
                "provisioning_log", "approvals", "quarantine"}
    assert designed <= names
    assert set(store.TABLES) == names


def test_plan_columns_match_design(tmp_path):
    with store.connect(tmp_path / "x.duckdb") as con:
        cols = [c for c, _ in store.column_schema(con, "plan")]
    assert cols[:10] == ["pair_key", "cycle_id", "change_id", "source_tenant_id", "source_object_id",
                         "target_user_id", "action", "changes", "desired", "reason"]


def test_connection_is_closed_after_the_block(tmp_path):
    with store.connect(tmp_path / "x.duckdb") as con:
        con.execute("SELECT 1")
    with pytest.raises(Exception, match="closed"):
        con.execute("SELECT 1")


def _writer(db: str, n: int) -> None:
    for i in range(n):
        with store.connect(db) as con:
            con.execute("INSERT INTO quarantine (pair_key, since, reason, released_at, failures) VALUES (?, now(), 'x', NULL, ?)", [f"p{i}", i])


def test_concurrent_processes_serialise_instead_of_failing(tmp_path):
    """Two processes writing at once would hit DuckDB's 'Could not set lock' without the file lock."""
    db = str(tmp_path / "x.duckdb")
    store.init(db)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(db, 15)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    with store.connect(db) as con:
        assert con.execute("SELECT count(*) FROM quarantine").fetchone()[0] == 30


def test_lock_timeout_names_the_file(tmp_path, monkeypatch):
    db = tmp_path / "x.duckdb"
    monkeypatch.setattr(store, "LOCK_TIMEOUT_S", 0.2)
    from filelock import FileLock

    other = FileLock(str(db.absolute()) + ".lock", thread_local=False, is_singleton=False)
    ctx = mp.get_context("spawn")
    with other:
        q = ctx.Queue()
        p = ctx.Process(target=_try_connect, args=(str(db), q))
        p.start()
        p.join(60)
        msg = q.get(timeout=5)
    assert str(db) in msg and "locked" in msg


def _try_connect(db: str, q) -> None:
    store.LOCK_TIMEOUT_S = 0.2
    try:
        with store.connect(db):
            q.put("connected")
    except store.StoreError as exc:
        q.put(str(exc))


def test_connections_draw_no_progress_bar(tmp_path):
    """DuckDB draws a progress bar on stdout for a long query; in a run it would land in the logs."""
    with store.connect(tmp_path / "x.duckdb") as con:
        assert con.execute("SELECT current_setting('enable_progress_bar')").fetchone() == (False,)


def test_a_table_is_described_by_the_comment_lines_right_above_it():
    """The schema file's own header (its conventions) is nobody's description, even above the first table."""
    tables = store.parse_schema("-- Conventions: statements end with `);`\n-- on a line of their own.\n\n"
                                "-- owner: m\n-- What t is for.\nCREATE TABLE IF NOT EXISTS t (\n"
                                "    a VARCHAR  -- the a\n);\n")
    assert tables["t"].doc == "What t is for."
    assert store.SCHEMA_TABLES["delta_cursors"].doc == "Where each tenant's users delta round stands (Graph's @odata.deltaLink)."


def test_count_counts_one_key_and_refuses_a_name_outside_the_schema(tmp_path):
    with store.connect(tmp_path / "x.duckdb") as con:
        con.executemany("INSERT INTO staged_users (tenant, id) VALUES (?, ?)", [["a", "1"], ["a", "2"], ["b", "3"]])
        assert (store.count(con, "staged_users", "tenant", "a"), store.count(con, "staged_users", "tenant", "c")) == (2, 0)
        with pytest.raises(ValueError, match="not a column"):
            store.count(con, "staged_users", "tenant = tenant OR 1", "a")
