"""How the store's leases (xts_pipeline/lease.py) map onto Dagster runs.

- A pair's cycle is `pair:<key>`. `xts sync` takes it in its own process before any extraction writes
  (owner: the cycle id, tag xts/cycle) and frees it at the end; the pair run's steps re-enter it as guests.
  A run outside a CLI cycle (UI, sensor, backfill) takes it at its first pair step, owned by its cycle tag
  or else its run id: later steps of that run re-enter it, a step hands it over (unbound from its
  process) to the next step, and the run's last pair step frees it. A run that stopped in between (a
  failed check) leaves it to be taken over as soon as Dagster reports that run finished.
- Extraction and snapshot are per tenant and shared by pairs: `source:<tenant>` and `target:<tenant>`
  are held for the step only, so two reads of one tenant never interleave in the staging tables.
- Writing into a target is `write:<target>`, held by the apply step's run (see target_write_step).
- Busy: the step waits up to XTS_LEASE_WAIT_S, then fails with one line naming the lease and its holder.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import dagster as dg

from xts_pipeline import lease, queries, store

CYCLE_TAG = "xts/cycle"
PAIR_STEPS = ("desired_state", "provisioning_plan", "guarded_plan", "applied_changes")


def owner_of(context: dg.AssetExecutionContext) -> str:
    """The cycle the run belongs to (every run of one cycle carries its tag), else the run itself."""
    return context.run.tags.get(CYCLE_TAG) or context.run.run_id


def _what(context: dg.AssetExecutionContext) -> str:
    cycle = context.run.tags.get(CYCLE_TAG)
    return f"Dagster run {context.run.run_id[:8]} ({context.run.job_name}{f', cycle {cycle}' if cycle else ''})"


def _finished(instance: dg.DagsterInstance):  # noqa: ANN202 - a small closure
    def finished(run_id: str) -> bool:
        run = instance.get_run_by_id(run_id)
        return run is not None and run.is_finished

    return finished


def _later_pair_steps(context: dg.AssetExecutionContext, step: str) -> bool:
    """Whether this run goes on to another pair step after `step` (then the lease is handed over)."""
    try:
        selected = context.run.asset_selection
        if selected is None:
            selected = set(context.job_def.asset_layer.selected_asset_keys)
        names = {k.to_user_string() for k in selected}
    except Exception:  # noqa: BLE001 - unknown: hand over; the finished-run check frees it after the run
        return True
    later = PAIR_STEPS[PAIR_STEPS.index(step) + 1:]
    return any(n in names for n in later)


def _acquire(context: dg.AssetExecutionContext, db: str, name: str, owner: str, wait_s: float | None = None) -> Any:
    """Take `name` for this run's owner; a busy lease fails the step with its one-line reason."""
    try:
        return lease.acquire(db, name, owner, _what(context), run_id=context.run.run_id,
                             finished=_finished(context.instance), wait_s=wait_s)
    except lease.LeaseBusy as exc:
        raise dg.Failure(description=str(exc)) from None


@contextmanager
def pair_step(context: dg.AssetExecutionContext, db: str, pair_key: str, step: str) -> Iterator[None]:
    """Hold the pair's cycle lease for one pair step of a run (see the module docstring)."""
    owner = owner_of(context)
    name = f"pair:{pair_key}"
    taken = _acquire(context, db, name, owner)
    if taken.why:
        context.log.warning(f"{lease.shown(name)}: took over a stale lease ({taken.why})")
    ok = False
    try:
        yield
        ok = True
    finally:
        if not taken.guest:
            lease.release(db, name, owner, handover=ok and _later_pair_steps(context, step))


@contextmanager
def tenant_step(context: dg.AssetExecutionContext, db: str, kind: str, tenant: str) -> Iterator[None]:
    """Hold `source:<tenant>` or `target:<tenant>` for one extraction or snapshot step."""
    owner = owner_of(context)
    name = f"{kind}:{tenant}"
    taken = _acquire(context, db, name, owner)
    try:
        yield
    finally:
        if not taken.guest:
            lease.release(db, name, owner)


# An apply may wait this long for another pair's apply into the same target (then it fails, saying which).
TARGET_WRITE_WAIT_S = float(os.environ.get("XTS_TARGET_WRITE_WAIT_S", "900"))


@contextmanager
def target_write_step(context: dg.AssetExecutionContext, db: str, target: str) -> Iterator[None]:
    """Hold `write:<target>` while one pair writes into `target`: one pair per target writes at a time in
    every path (CLI cycle, schedule and sensor, a materialization from the UI), since pairs into one target
    share its Graph write budget. The owner is the run, not the cycle: two pairs of one cycle are two runs
    and must not share it. The run queue's `xts/target` tag limit (dagster_home/dagster.yaml) keeps the
    daemon's runs from even starting together; this lease covers runs that bypass the queue."""
    name = f"write:{target}"
    owner = context.run.run_id
    taken = _acquire(context, db, name, owner, wait_s=TARGET_WRITE_WAIT_S)
    try:
        yield
    finally:
        if not taken.guest:
            lease.release(db, name, owner)


@contextmanager
def snapshot_step(context: dg.AssetExecutionContext, db: str, tenant: str) -> Iterator[None]:
    """The target lease, and the time the snapshot started reading (the planner's stale-snapshot guard)."""
    with tenant_step(context, db, "target", tenant):
        with store.connect(db) as con:
            started = con.execute(queries.load("lease_hook/now", "assets")).fetchone()[0]
        yield
        with store.connect(db) as con:
            store.set_watermark(con, f"snapshot:{tenant}", started, context.run.run_id)


def store_session(lease_cm: Callable[[Any, Any], AbstractContextManager[Any]]) -> Callable[[Any], Any]:
    """Decorator for a step that only computes over DuckDB: from its lease on, it holds one connection.

    Opening the DuckDB file costs ~30-60 ms (a new database instance each time); a step that opens it a dozen
    times (the domain call, then the metadata queries) pays that a dozen times, under the file lock that other
    processes wait on. Here the step takes its lease first (`lease_cm(context, db)`, the one place a step may
    wait on another run), then keeps the file open and locked until it returns: every store.connect inside
    reuses the open instance. Steps that call Graph (extraction, snapshot, apply) must not use it.
    """
    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def step(context: Any, *args: Any, **kwargs: Any) -> Any:
            db = context.resources.duckdb.db()
            with lease_cm(context, db), store.connect(db):
                return fn(context, *args, **kwargs)

        return step

    return wrap


def cli_pair_leases(db: str, pair_keys: list[str], tags: dict[str, str],
                    wait_s: float | None = None) -> tuple[list[str], dict[str, str]]:
    """`xts sync`: take every pair's cycle lease in this process before any extraction writes.

    Returns (the pairs taken, the busy ones with their one-line reason). Free them with `release_cli`.
    """
    owner = tags[CYCLE_TAG]
    what = f"xts sync cycle {owner}"
    free, later = [], []
    # First every free lease over one open of the file (no waiting while it is held: a holder in another
    # process could not release), then the busy ones, each waiting as long as it may.
    with store.connect(db):
        for key in pair_keys:
            try:
                lease.acquire(db, f"pair:{key}", owner, what, wait_s=0)
                free.append(key)
            except lease.LeaseBusy:
                later.append(key)
    busy = {}
    for key in later:
        try:
            lease.acquire(db, f"pair:{key}", owner, what, wait_s=wait_s)
            free.append(key)
        except lease.LeaseBusy as exc:
            busy[key] = str(exc)
    return [k for k in pair_keys if k in free], busy


def release_cli(db: str, pair_keys: list[str], tags: dict[str, str]) -> None:
    with store.connect(db):  # one open of the file for all of them (a release never waits)
        for key in pair_keys:
            lease.release(db, f"pair:{key}", tags[CYCLE_TAG])


def holder_text(db: str, name: str) -> Any:
    """The current holder of a lease, described (for messages and tests)."""
    h = lease.current(db, name)
    return None if h is None else h.describe()
