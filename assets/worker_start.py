"""Starting `xts sync`'s worker processes: kept free of Dagster imports so the CLI can start them first.

The fork server is a clean, single-threaded process that imports the heavy libraries once; every worker is
forked from it and shares them copy-on-write. `xts sync` starts it before it imports anything heavy itself,
so the server's imports (Dagster, Great Expectations: several seconds) overlap the CLI's own set-up instead
of following it.
"""

from __future__ import annotations

import os
from multiprocessing import get_context
from multiprocessing.context import BaseContext

DEFAULT_WORKERS = 4  # like concurrency.runs.max_concurrent_runs in dagster_home/dagster.yaml
WORKERS_ENV = "XTS_SYNC_WORKERS"
START_METHOD_ENV = "XTS_SYNC_START"  # "forkserver" (default) or "spawn"
# Imported once by the fork server, then shared copy-on-write by every worker it forks: Great Expectations
# alone takes ~3 s and ~260 MB per process, which 'spawn' would pay again in every worker. The cycle and
# storage modules are what each worker runs first (instance, run launch).
PRELOAD = ("dagster", "duckdb", "pandas", "pandera.pandas", "great_expectations", "xts_pipeline.graph",
           "assets.sync", "assets.guarded_plan", "checks.staging_checks", "checks.plan_checks", "checks.guardrails", "checks.gx_suite",
           "assets.cycle", "assets.launch", "assets.instance_storage")


def default_workers() -> int:
    """$XTS_SYNC_WORKERS, else 4; 1 runs everything in this process, one after another."""
    try:
        return max(1, int(os.environ.get(WORKERS_ENV) or DEFAULT_WORKERS))
    except ValueError:
        return DEFAULT_WORKERS


def mp_context() -> BaseContext:
    """Worker processes start from a clean single-threaded process, never a fork of this (threaded) one."""
    method = os.environ.get(START_METHOD_ENV) or "forkserver"
    if method != "forkserver":
        return get_context(method)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")  # the fork server imports GX: no network from it
    ctx = get_context("forkserver")
    ctx.set_forkserver_preload(list(PRELOAD))
    return ctx


def start_workers() -> None:
    """Start the fork server now, so its imports overlap the caller's own set-up."""
    if (os.environ.get(START_METHOD_ENV) or "forkserver") == "forkserver":
        from multiprocessing import forkserver

        mp_context()
        forkserver.ensure_running()
