"""`xts sync`: one cycle through the same Dagster jobs, in process, against the instance in DAGSTER_HOME.

Runs appear in the Dagster UI like scheduled ones (with a job origin, so they can be re-executed there).
The topology, the DuckDB file and the instance come from xts_pipeline.paths, the rule the UI and every
other command use. Every tenant's credential is checked before anything starts (exit 2 naming the
tenant and the variable). Exit codes are in `xts_pipeline.cli.EXIT_CODES`; a blocked pair's note prints the complete,
paste-safe `xts approve` command.

Tenants (extract, snapshot), then targets, run concurrently in worker processes ($XTS_SYNC_WORKERS, 4 by
default; 1 runs everything in this process): each target has its own Graph budget, so pairs into different
targets apply at the same time and pairs into one target one after another (assets/cycle.py).
"""

from __future__ import annotations

import sys
import time


def _pair_keys(topology, spec: str | None) -> list[str] | None:
    """Pair keys named by --pairs (SRC->DST or SRC__DST, comma-separated), or None for every pair."""
    if not spec:
        return None
    return [topology.pair(item.strip()).key for item in spec.split(",") if item.strip()]


def _may_skip(db, keys: list[str]) -> bool:
    """Whether the change probe may find nothing to run (then no worker is started before it has looked)."""
    from xts_pipeline import probe

    try:
        return probe.worth_probing(db, keys)
    except Exception:  # noqa: BLE001 - a store that can't be read now fails later, with its own message
        return False


def sync_command(args) -> int:
    from xts_pipeline import paths, preflight
    from xts_pipeline.config import ConfigError

    try:
        resolved, topology = paths.resolve(args.config, args.sandbox, allow_demo=bool(args.sandbox))
        pair_keys = _pair_keys(topology, args.pairs)
        if not resolved.sandbox:
            preflight.check_credentials(topology, preflight.tenants_for(topology, pair_keys))
    except ConfigError as exc:
        print(f"xts sync: {exc}", file=sys.stderr)
        return 2
    from assets.worker_start import default_workers, start_workers

    workers = default_workers()
    keys = pair_keys or [p.key for p in topology.pairs() if p.enabled]
    if workers > 1 and (args.dry_run or getattr(args, "full", False) or not _may_skip(resolved.duckdb, keys)):
        start_workers()  # runs are certain: the fork server's imports overlap everything below
    home = paths.dagster_home()
    from assets.cycle import cycle_tags, sync_in_process
    from assets.summary import UNCHANGED, format_summary

    sandbox = str(resolved.sandbox) if resolved.sandbox else None
    started, tags = time.monotonic(), cycle_tags()
    mode = "dry run (plan only, nothing written)" if args.dry_run else "sync cycle"
    print(f"xts sync: {mode}; config {resolved.config}" + (f"; sandbox {sandbox}" if sandbox else "")
          + f"; store {resolved.duckdb}; instance {home}", flush=True)
    from assets.progress import CycleProgress

    with paths.exported(resolved.env()), \
            CycleProgress(str(resolved.duckdb), preflight.tenants_for(topology, keys), keys):
        outcomes = sync_in_process(resolved.config, sandbox, str(resolved.duckdb), pair_keys,
                                   dry_run=bool(args.dry_run), workers=workers, tags=tags,
                                   full=bool(getattr(args, "full", False)))
    print(f"xts sync: cycle {tags['xts/cycle']} took {time.monotonic() - started:.1f} s; "
          + (f"up to {workers} tenants or targets at a time" if workers > 1 else "one run at a time"))
    print(format_summary(outcomes, resolved))
    return 1 if any(o.status not in ("ok", "planned", UNCHANGED) for o in outcomes) else 0
