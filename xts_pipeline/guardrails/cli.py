"""`xts approve` and `xts release`: the admin's two levers on a blocked or quarantined pair."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .approvals import current_user, record_approval, stored_fingerprint
from .quarantine import release


class CliError(Exception):
    """A problem the person at the terminal can fix; printed as one line, exit code 2."""


def _parse_pair(text: str) -> tuple[str, str]:
    for sep in ("->", "__"):
        if sep in text:
            source, _, target = text.partition(sep)
            if source.strip() and target.strip():
                return source.strip(), target.strip()
    raise CliError(f"--pair {text!r} is not SRC->DST; write it like contoso->fabrikam")


def _resolve(args: argparse.Namespace) -> tuple[str, str, Path]:
    """(pair key, pair shown to people, DuckDB path) by xts_pipeline.paths, the rule every entry point uses."""
    source, target = _parse_pair(args.pair)
    from xts_pipeline import paths
    from xts_pipeline.config import ConfigError

    try:
        resolved, topology = paths.resolve(getattr(args, "config", None))
        pair = topology.pair(f"{source}->{target}")
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    return pair.key, pair.name, resolved.duckdb


def approve_command(args: argparse.Namespace) -> int:
    """Record an approval of one plan fingerprint for one pair; prints who, when and why."""
    from xts_pipeline.store import connect

    try:
        key, shown, db = _resolve(args)
        with connect(db) as con:
            rec = record_approval(con, key, args.plan, args.reason)
            current = stored_fingerprint(con, key)
    except (CliError, ValueError) as exc:
        print(f"xts approve: {exc}", file=sys.stderr)
        return 2
    print(f"approved plan {rec['fingerprint']} of {shown} by {rec['approved_by']} at "
          f"{rec['approved_at']:%Y-%m-%d %H:%M:%S} UTC: {rec['reason']} (stored in {db})")
    if not current:
        print(f"note: the store {db} holds no plan of {shown} yet, so nothing there has fingerprint "
              f"{rec['fingerprint']}; if `xts sync` printed it, run this with the same --config (or "
              f"$XTS_CONFIG) as that sync", file=sys.stderr)
    elif current != rec["fingerprint"]:
        print(f"note: the latest plan of {shown} in {db} has fingerprint {current}, not {rec['fingerprint']}; this "
              f"approval applies only if a run plans exactly that content. Check the fingerprint in "
              f"`xts sync` or the guardrail check's metadata", file=sys.stderr)
    elif current:
        print(f"the next run of {shown} that plans exactly this content will apply it")
    return 0


def release_command(args: argparse.Namespace) -> int:
    """Lift a pair's quarantine so the next scheduled run syncs it again."""
    from xts_pipeline.store import connect

    try:
        key, shown, db = _resolve(args)
        with connect(db) as con:
            state = release(con, key, current_user())
    except CliError as exc:
        print(f"xts release: {exc}", file=sys.stderr)
        return 2
    if state is None:
        print(f"xts release: {shown} is not quarantined (checked {db}); nothing to do", file=sys.stderr)
        return 1
    print(f"released {shown} from quarantine (since {state.since:%Y-%m-%d %H:%M} UTC: {state.reason}) by "
          f"{state.released_by} at {state.released_at:%Y-%m-%d %H:%M:%S} UTC")
    return 0
