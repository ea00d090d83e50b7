"""Leases in the store (xts_pipeline/lease.py): one holder at a time, re-entry by the owner, a one-line
refusal naming the holder, and safe take-over of a holder that died, stopped renewing or whose run ended."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from datetime import timedelta

import pytest

from xts_pipeline import lease, store


def _hold_forever(db: str, ready) -> None:  # noqa: ANN001 - a multiprocessing Event
    lease.acquire(db, "pair:a__b", "cycle-child", "xts sync cycle cycle-child", wait_s=0)
    ready.set()
    time.sleep(600)


def test_second_owner_is_refused_with_one_line_naming_pair_and_holder(tmp_path):
    db = str(tmp_path / "x.duckdb")
    lease.acquire(db, "pair:src__dst", "cycle-1", "xts sync cycle cycle-1", wait_s=0)
    with pytest.raises(lease.LeaseBusy) as err:
        lease.acquire(db, "pair:src__dst", "cycle-2", "xts sync cycle cycle-2", wait_s=0.3)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("pair src->dst is busy") and "xts sync cycle cycle-1" in msg and f"pid {os.getpid()}" in msg
    lease.release(db, "pair:src__dst", "cycle-1")
    assert lease.acquire(db, "pair:src__dst", "cycle-2", "xts sync cycle cycle-2", wait_s=0).previous is None
    lease.release(db, "pair:src__dst", "cycle-2")
    assert lease.current(db, "pair:src__dst") is None


def test_owner_reenters_as_guest_and_a_guest_never_frees_it(tmp_path):
    db = str(tmp_path / "x.duckdb")
    first = lease.acquire(db, "pair:s__t", "cycle-1", "cli", wait_s=0)
    again = lease.acquire(db, "pair:s__t", "cycle-1", "a step of the same cycle", wait_s=0)
    assert not first.guest and again.guest
    assert lease.current(db, "pair:s__t").what == "cli"  # the guest did not rebind it
    lease.release(db, "pair:s__t", "someone-else")  # only the owner can free it
    assert lease.current(db, "pair:s__t") is not None
    lease.release(db, "pair:s__t", "cycle-1")


def test_a_killed_holder_is_taken_over_at_once(tmp_path):
    db = str(tmp_path / "x.duckdb")
    store.init(db)
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    child = ctx.Process(target=_hold_forever, args=(db, ready))
    child.start()
    try:
        assert ready.wait(60)
        with pytest.raises(lease.LeaseBusy, match=f"pid {child.pid}"):
            lease.acquire(db, "pair:a__b", "cycle-me", "me", wait_s=0)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
    taken = lease.acquire(db, "pair:a__b", "cycle-me", "me", wait_s=0)
    assert taken.previous is not None and taken.previous.owner == "cycle-child"
    assert taken.why == f"its process {child.pid} is gone"
    lease.release(db, "pair:a__b", "cycle-me")


def test_unrenewed_lease_expires_and_a_finished_run_frees_its_handover(tmp_path):
    db = str(tmp_path / "x.duckdb")
    lease.acquire(db, "pair:a__b", "run-1", "run 1", wait_s=0, ttl_s=60)
    with store.connect(db) as con:  # as if its host stopped renewing it long ago
        con.execute("UPDATE leases SET host = 'elsewhere', expires_at = expires_at - ?", [timedelta(hours=1)])
    lease._registry_drop("pair:a__b")
    taken = lease.acquire(db, "pair:a__b", "run-2", "run 2", wait_s=0)
    assert taken.why and "TTL passed" in taken.why
    # run-2's step ends and hands the lease over to its next step (unbound from any process)
    lease.release(db, "pair:a__b", "run-2", handover=True)
    assert lease.current(db, "pair:a__b").pid is None
    with pytest.raises(lease.LeaseBusy, match="between steps"):
        lease.acquire(db, "pair:a__b", "run-3", "run 3", wait_s=0, finished=lambda rid: False)
    taken = lease.acquire(db, "pair:a__b", "run-3", "run 3", wait_s=0, finished=lambda rid: rid == "run-2")
    assert taken.why == "run run-2 has finished"
    lease.release(db, "pair:a__b", "run-3")


def test_heartbeat_notices_a_take_over(tmp_path):
    db = str(tmp_path / "x.duckdb")
    lease.acquire(db, "pair:x__y", "cycle-1", "one", wait_s=0)
    with store.connect(db) as con:
        con.execute("UPDATE leases SET owner = 'cycle-2' WHERE name = 'pair:x__y'")
    lease.renew_now()
    with pytest.raises(lease.LeaseLost, match="pair x->y"):
        lease.check("pair:x__y")
    lease.check("pair:never__held")  # no-op for a lease this process never held
