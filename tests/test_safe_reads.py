"""Reading the store never fails a running job: a program holding DuckDB's own lock makes the pipeline
wait and retry (store.connect), and `xts log` / `xts status` read through the pipeline's file lock."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from xts_pipeline import store


def test_pipeline_waits_for_a_program_holding_duckdbs_lock(tmp_path):
    db = tmp_path / "xts.duckdb"
    store.init(db)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import duckdb, sys, time
        con = duckdb.connect({str(db)!r})  # as a `duckdb` shell would: DuckDB's lock, not ours
        print("open", flush=True)
        time.sleep(2.0)
        con.close()
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        started = time.monotonic()
        with store.connect(db) as con:  # used to fail at once: "Could not set lock on file"
            assert con.execute("SELECT count(*) FROM plan").fetchone()[0] == 0
        assert time.monotonic() - started >= 0.5  # it waited for the holder rather than failing
    finally:
        holder.wait(10)


def test_a_lock_that_outlasts_the_timeout_names_the_file(tmp_path, monkeypatch):
    db = tmp_path / "xts.duckdb"
    store.init(db)
    monkeypatch.setattr(store, "LOCK_TIMEOUT_S", 0.5)
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(db)!r}); "
                               "print('open', flush=True); time.sleep(5)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(store.StoreError, match="another program keeps it open") as err:
            with store.connect(db):
                pass
        assert str(db) in str(err.value)
    finally:
        holder.kill()
        holder.wait(10)


def test_progress_reads_users_and_writes_from_the_store(tmp_path, monkeypatch):
    """The CLI's progress bars: users read per tenant, writes done/total of the pair's current plan."""
    from assets.progress import CycleProgress

    db = tmp_path / "xts.duckdb"
    with store.connect(db) as con:
        con.execute("INSERT INTO raw_users (tenant, id) SELECT 'src', 'u' || i FROM range(7) t(i)")
        con.execute("INSERT INTO plan_meta (pair_key, cycle_id) VALUES ('src__dst', 'run-2')")
        con.execute("""INSERT INTO write_journal (pair_key, cycle_id, change_id, state)
                       SELECT 'src__dst', CASE WHEN i < 10 THEN 'run-2' ELSE 'run-1' END, 'c' || i,
                              CASE WHEN i < 4 THEN 'done' WHEN i < 10 THEN 'in_flight' ELSE 'done' END
                       FROM range(12) t(i)""")
    monkeypatch.setenv("XTS_PROGRESS", "0")
    progress = CycleProgress(str(db), ["src", "dst"], ["src__dst"])
    progress._poll()
    try:
        assert progress._bars["t:src"].n == 7
        bar = progress._bars["p:src__dst"]
        assert (bar.n, bar.total) == (4, 10)  # the current plan's writes only
        assert "budget" in bar.postfix
    finally:
        progress.close()
