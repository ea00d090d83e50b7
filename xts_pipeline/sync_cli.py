"""`xts sync`: one cycle through the same Dagster jobs, in process, against the instance in DAGSTER_HOME.

Runs appear in the Dagster UI like scheduled ones. Exit code: 0 when every pair ran and no blocking check
failed; 1 when a blocking check failed, a step errored or a pair is quarantined (skipped, as a scheduled
cycle skips it); 2 for a configuration problem. A blocked pair's note shows its plan fingerprint and the
exact `xts approve` command.

Tenants (extract, snapshot), then targets, run concurrently in worker processes ($XTS_SYNC_WORKERS, 4 by
default; 1 runs everything in this process): each target has its own Graph budget, so pairs into different
targets apply at the same time and pairs into one target one after another (assets/cycle.py).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def dagster_home() -> Path:
    """$DAGSTER_HOME, else <repo>/dagster_home (absolute, as Dagster requires), created if missing."""
    home = Path(os.environ.get("DAGSTER_HOME") or REPO_ROOT / "dagster_home").absolute()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _pair_keys(topology, spec: str | None) -> list[str] | None:
    """Pair keys named by --pairs (SRC->DST,...), or None for every pair."""
    if not spec:
        return None
    return [topology.pair(item.strip()).key for item in spec.split(",") if item.strip()]


def sync_command(args) -> int:
    from xts_pipeline.config import ConfigError, resolve_config_path

    try:
        config = resolve_config_path(args.config, fallback_to_demo=bool(args.sandbox))
        home = dagster_home()
        sandbox = str(Path(args.sandbox).absolute()) if args.sandbox else None
        from assets.resources import load_topology

        topology = load_topology(str(Path(config).absolute()), sandbox)
        pair_keys = _pair_keys(topology, args.pairs)
    except ConfigError as exc:
        print(f"xts sync: {exc}", file=sys.stderr)
        return 2
    db = os.environ.get("XTS_DUCKDB")
    if not db and not args.config and not os.environ.get("XTS_CONFIG"):
        db = str(home / "xts.duckdb")  # the packaged demo topology keeps its staging file by the instance
    from assets.cycle import cycle_tags, default_workers, format_summary, sync_in_process

    started, workers, tags = time.monotonic(), default_workers(), cycle_tags()
    outcomes = sync_in_process(config, sandbox, db, pair_keys, dry_run=bool(args.dry_run), workers=workers,
                               tags=tags)
    mode = "dry run (plan only, nothing written)" if args.dry_run else "sync cycle"
    print(f"xts sync: {mode}; config {config}" + (f"; sandbox {sandbox}" if sandbox else "")
          + f"; instance {home}")
    print(f"xts sync: cycle {tags['xts/cycle']} took {time.monotonic() - started:.1f} s; "
          + (f"up to {workers} tenants or targets at a time" if workers > 1 else "one run at a time"))
    print(format_summary(outcomes))
    failed = any(o.failed_checks or o.errors or o.quarantined for o in outcomes)
    return 1 if failed else 0
