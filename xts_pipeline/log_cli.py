"""`xts log` and `xts status`: read the store as a running cycle shares it, never failing that cycle.

Both go through store.connect(): the same cross-process file lock the pipeline's steps take, held only
for the few queries here, so a run waits a moment for them instead of meeting DuckDB's "Could not set
lock on file" (which a `duckdb` shell opening the file directly would cause; the pipeline now waits on
that too). Which store is read follows xts_pipeline.paths, like every other command.

`xts log` lists provisioning-log entries, staging rejects (kind `rejected`) and mapping errors (kind
`mapping_error`) with one set of columns, filtered by pair, user, action, status and cycle, as a table,
CSV or JSON. `xts status` gives one line per pair: last cycle, its counts, holds, block, quarantine and
next retry.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from datetime import datetime
from typing import Any

from xts_pipeline import plan_meta, queries, store
from xts_pipeline.vocabulary import BLOCKED, PAIR_SEP, PAIR_SHOWN_SEP, shown_pair

# A pair key shown as people read it, in SQL (vocabulary.shown_pair's separators, bound as values).
_SEPS = {"pair_sep": PAIR_SEP, "shown_sep": PAIR_SHOWN_SEP}
LOG_COLUMNS = ("logged_at", "cycle_id", "pair", "kind", "action", "status", "user", "target_user_id", "detail")


def _resolve(args: Any) -> tuple[Any, Any]:
    from xts_pipeline import paths

    return paths.resolve(getattr(args, "config", None))


def _pair_filter(topology: Any, text: str | None) -> str | None:
    return topology.pair(text).key if text else None


def log_rows(con: Any, topology: Any, *, pair: str | None = None, user: str | None = None,
             action: str | None = None, status: str | None = None, cycle: str | None = None,
             kinds: tuple[str, ...] = ("provisioning", "rejected", "mapping_error"), limit: int = 200) -> list[dict]:
    """Rows of the three kinds, newest first, as dicts with LOG_COLUMNS (set-based SQL, one query per kind)."""
    like = f"%{user.lower()}%" if user else None
    rows: list[tuple] = []
    if "provisioning" in kinds:
        rows += con.execute(
            queries.load("log_cli/provisioning"),
            {"pair": pair, "cycle": cycle, "action": action, "status": status, "like": like, "user": user,
             "limit": limit, **_SEPS}).fetchall()
    by_source: dict[str, list[str]] = {}
    for p in topology.pairs():
        if p.enabled and (pair is None or p.key == pair):
            by_source.setdefault(p.source, []).append(p.key)
    wants_status = status is None or status.lower() in ("rejected", "error", "failure")
    if "rejected" in kinds and wants_status and action in (None, "rejected") and cycle is None:
        for source, keys in by_source.items():
            for rid, upn, reasons, at in con.execute(
                    queries.load("log_cli/rejected"),
                    {"t": source, "like": like, "user": user, "limit": limit}).fetchall():
                rows += [(at, None, shown_pair(k), "rejected", "stage", "Rejected", upn or rid, None, reasons)
                         for k in keys]
    if "mapping_error" in kinds and wants_status and action in (None, "mapping_error") and cycle is None:
        rows += con.execute(
            queries.load("log_cli/mapping_errors"),
            {"pairs": [k for keys in by_source.values() for k in keys], "like": like, "user": user,
             "limit": limit, **_SEPS}).fetchall()
    rows.sort(key=lambda r: (r[0] is not None, r[0] or datetime.min), reverse=True)
    return [dict(zip(LOG_COLUMNS, r, strict=True)) for r in rows[:limit]]


def render(rows: list[dict], fmt: str, columns: tuple[str, ...] = LOG_COLUMNS) -> str:
    """A table (detail capped for the terminal), CSV or JSON of `rows`."""
    if fmt == "json":
        return json.dumps(rows, default=str, indent=1)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)
        return buf.getvalue().rstrip("\n")
    from tabulate import tabulate

    def cell(v: Any) -> str:
        text = "" if v is None else f"{v:%Y-%m-%d %H:%M:%S}" if isinstance(v, datetime) else str(v)
        return text if len(text) <= 90 else text[:89] + "…"

    return tabulate([[cell(r[c]) for c in columns] for r in rows], headers=list(columns), tablefmt="github")


def log_command(args: Any) -> int:
    from xts_pipeline import store
    from xts_pipeline.config import ConfigError

    try:
        resolved, topology = _resolve(args)
        pair = _pair_filter(topology, args.pair)
    except ConfigError as exc:
        print(f"xts log: {exc}", file=sys.stderr)
        return 2
    kinds = tuple(args.kind.split(",")) if args.kind else ("provisioning", "rejected", "mapping_error")
    if not resolved.duckdb.exists():
        print(f"xts log: no store at {resolved.duckdb} yet (no cycle ran with this topology)", file=sys.stderr)
        return 1
    with store.connect(resolved.duckdb) as con:
        rows = log_rows(con, topology, pair=pair, user=args.user, action=args.action, status=args.status,
                        cycle=args.cycle, kinds=kinds, limit=args.limit)
    print(render(rows, args.format))
    if args.format == "table":
        print(f"{len(rows)} entr{'y' if len(rows) == 1 else 'ies'} from {resolved.duckdb}"
              + (f" (--limit {args.limit} reached)" if len(rows) >= args.limit else ""), file=sys.stderr)
    return 0


STATUS_COLUMNS = ("pair", "last_cycle", "planned_at", "written", "failed", "held", "blocked", "rejected",
                  "mapping_errors", "quarantine", "next_retry")


def status_rows(con: Any, topology: Any) -> list[dict]:
    """One row per enabled pair from plan_meta, provisioning_log, plan_exclusions, rejects and quarantine."""
    from xts_pipeline.guardrails import quarantine

    out = []
    for p in topology.pairs():
        if not p.enabled:
            continue
        meta = plan_meta.read(con, p.key)
        cycle, planned_at, blocked_reason = (meta.cycle_id, meta.planned_at, meta.blocked_reason) if meta else \
            (None, None, None)
        log = dict(con.execute(queries.load("log_cli/status_counts"), [p.key, cycle]).fetchall()) if cycle else {}
        blocked = con.execute(queries.load("log_cli/blocked_count"),
                              {"pair_key": p.key, "cycle_id": cycle, "blocked": BLOCKED}).fetchone()[0]
        held = con.execute(queries.load("log_cli/held_count"),
                           [p.key, cycle]).fetchone()[0]
        rejected = store.count(con, "rejected_users", "tenant", p.source)
        errors = store.count(con, "desired_errors", "pair_key", p.key)
        state = quarantine.get_state(con, p.key)
        active = state is not None and state.active
        out.append({
            "pair": p.name, "last_cycle": cycle or "never", "planned_at": planned_at,
            "written": int(log.get("Success", 0)), "failed": int(log.get("Failure", 0)), "held": int(held),
            "blocked": (f"{blocked} write(s): {blocked_reason or 'a pair guardrail'}" if blocked
                        else (blocked_reason or "")),
            "rejected": int(rejected), "mapping_errors": int(errors),
            "quarantine": (f"{state.status} since {state.since:%Y-%m-%d %H:%M}: {state.reason}" if active else ""),
            "next_retry": state.next_retry_at if active and state.next_retry_at else None})
    return out


def status_command(args: Any) -> int:
    from xts_pipeline import store
    from xts_pipeline.config import ConfigError

    try:
        resolved, topology = _resolve(args)
    except ConfigError as exc:
        print(f"xts status: {exc}", file=sys.stderr)
        return 2
    if not resolved.duckdb.exists():
        print(f"xts status: no store at {resolved.duckdb} yet (no cycle ran with this topology)", file=sys.stderr)
        return 1
    with store.connect(resolved.duckdb) as con:
        rows = status_rows(con, topology)
    print(render(rows, args.format, STATUS_COLUMNS))
    return 0
