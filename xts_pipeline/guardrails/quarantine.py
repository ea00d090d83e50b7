"""Quarantine a failing pair, as Entra does: skip it with back-off, disable it after four weeks.

Entra quarantines a job when its credentials fail, or, after at least 5,000 failures, when more than
40 % of events fail or there are more than 40,000 failures; it then retries after 6 h, 12 h, 24 h and
every 24 h, and disables the job after 4 weeks. The thresholds scale through `QuarantinePolicy`.
One row per pair in the DuckDB table `quarantine`; the caller owns the (short-lived) connection.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from .policy import QuarantinePolicy

COLUMNS = {
    "pair_key": "VARCHAR", "status": "VARCHAR", "reason": "VARCHAR", "since": "TIMESTAMP",
    "next_retry_at": "TIMESTAMP", "attempts": "INTEGER", "released_at": "TIMESTAMP",
    "released_by": "VARCHAR", "failures": "BIGINT",
}
QUARANTINED, DISABLED, RELEASED = "quarantined", "disabled", "released"


@dataclass(frozen=True)
class ApplyStats:
    """Outcome counts of one apply of one pair."""

    events: int
    failures: int
    credentials_failed: bool = False
    detail: str = ""  # the first error seen (one line naming tenant and endpoint), kept in the reason


@dataclass(frozen=True)
class QuarantineState:
    pair_key: str
    status: str
    reason: str
    since: datetime
    next_retry_at: datetime | None
    attempts: int
    released_at: datetime | None = None
    released_by: str | None = None
    failures: int = 0

    @property
    def active(self) -> bool:
        return self.status in (QUARANTINED, DISABLED)


@dataclass(frozen=True)
class SkipDecision:
    skipped: bool
    message: str
    state: QuarantineState | None


def _now(now: datetime | None) -> datetime:
    """Naive UTC, as DuckDB TIMESTAMP stores it."""
    now = now or datetime.now(UTC)
    return now.astimezone(UTC).replace(tzinfo=None) if now.tzinfo else now


def ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    """Create the table, or add our columns to the one store.py may have created first."""
    cols = ", ".join(f"{k} {v}" for k, v in COLUMNS.items())
    con.execute(f"CREATE TABLE IF NOT EXISTS quarantine ({cols})")
    have = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                      "WHERE table_name = 'quarantine'").fetchall()}
    for name, typ in COLUMNS.items():
        if name not in have:
            con.execute(f"ALTER TABLE quarantine ADD COLUMN {name} {typ}")


def evaluate_quarantine(stats: ApplyStats, policy: QuarantinePolicy) -> str | None:
    """Why this apply should quarantine the pair, or None when it should not."""
    cause = f": {stats.detail[:300]}" if stats.detail else ""
    if stats.credentials_failed:
        return ("credentials failed: the target refused the pair's app (its token, or every write for lack of "
                "permission)" + cause)
    if stats.failures < policy.min_failures:
        return None
    if stats.failures > policy.max_failures:
        return f"{stats.failures} failures, more than max_failures={policy.max_failures}" + cause
    rate = stats.failures / stats.events if stats.events else 1.0
    if rate > policy.failure_rate:
        return (f"{stats.failures} of {stats.events} events failed ({rate:.0%}), more than "
                f"failure_rate={policy.failure_rate:.0%} after at least min_failures={policy.min_failures}"
                + cause)
    return None


def get_state(con: duckdb.DuckDBPyConnection, pair_key: str) -> QuarantineState | None:
    ensure_table(con)
    row = con.execute(
        f"SELECT {', '.join(COLUMNS)} FROM quarantine WHERE pair_key = ? ORDER BY since DESC NULLS LAST LIMIT 1",  # noqa: S608
        [pair_key],
    ).fetchone()
    if row is None:
        return None
    values: dict[str, Any] = dict(zip(COLUMNS, row, strict=True))
    values["attempts"] = values["attempts"] or 0
    values["failures"] = values["failures"] or 0
    values["status"] = values["status"] or (RELEASED if values["released_at"] else QUARANTINED)
    values["reason"] = values["reason"] or ""
    return QuarantineState(**values)


def _save(con: duckdb.DuckDBPyConnection, state: QuarantineState) -> QuarantineState:
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM quarantine WHERE pair_key = ?", [state.pair_key])
        con.execute(
            f"INSERT INTO quarantine ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",  # noqa: S608
            [getattr(state, c) for c in COLUMNS],
        )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return state


def enter(con: duckdb.DuckDBPyConnection, pair_key: str, reason: str, policy: QuarantinePolicy,
          now: datetime | None = None, failures: int = 0) -> QuarantineState:
    """Quarantine the pair now; the first retry is after the first back-off step (6 h by default)."""
    ensure_table(con)
    now = _now(now)
    return _save(con, QuarantineState(pair_key, QUARANTINED, reason, now, now + policy.delay(0), 0,
                                      failures=failures))


def release(con: duckdb.DuckDBPyConnection, pair_key: str, released_by: str,
            now: datetime | None = None) -> QuarantineState | None:
    """Lift a quarantine (or a disable); returns the released state, or None if the pair was not quarantined."""
    state = get_state(con, pair_key)
    if state is None or not state.active:
        return None
    now = _now(now)
    return _save(con, QuarantineState(pair_key, RELEASED, state.reason, state.since, None, state.attempts,
                                      now, released_by, state.failures))


def is_skipped(con: duckdb.DuckDBPyConnection, pair_key: str, now: datetime | None = None) -> SkipDecision:
    """Should a scheduled run skip this pair now? A due retry is not skipped: it is the back-off probe."""
    state = get_state(con, pair_key)
    now = _now(now)
    if state is None or not state.active:
        return SkipDecision(False, f"{pair_key}: not quarantined", state)
    shown = pair_key.replace("__", "->", 1)
    if state.status == DISABLED:
        return SkipDecision(True, f"{shown}: disabled after quarantine since {state.since:%Y-%m-%d %H:%M} UTC "
                                  f"({state.reason}); fix the cause, then run `xts release --pair '{shown}'`", state)
    if state.next_retry_at is not None and now < state.next_retry_at:
        wait = state.next_retry_at - now
        return SkipDecision(True, f"{shown}: quarantined since {state.since:%Y-%m-%d %H:%M} UTC ({state.reason}); "
                                  f"next retry at {state.next_retry_at:%Y-%m-%d %H:%M} UTC (in {_human(wait)}), "
                                  f"attempt {state.attempts + 1}; fix the cause, then `xts release --pair '{shown}'`",
                            state)
    return SkipDecision(False, f"{shown}: quarantined, retry {state.attempts + 1} is due now", state)


def after_apply(con: duckdb.DuckDBPyConnection, pair_key: str, stats: ApplyStats, policy: QuarantinePolicy,
                now: datetime | None = None) -> QuarantineState | None:
    """Update the pair's state from one apply: enter, back off, disable, or release after a good retry."""
    now = _now(now)
    state = get_state(con, pair_key)
    reason = evaluate_quarantine(stats, policy)
    if state is not None and state.active:
        if reason is None:
            return release(con, pair_key, "automatic: retry succeeded", now)
        attempts = state.attempts + 1
        if now - state.since >= timedelta(days=policy.disable_after_days):
            return _save(con, QuarantineState(pair_key, DISABLED, reason, state.since, None, attempts,
                                              failures=stats.failures))
        return _save(con, QuarantineState(pair_key, QUARANTINED, reason, state.since, now + policy.delay(attempts),
                                          attempts, failures=stats.failures))
    if reason is not None:
        return enter(con, pair_key, reason, policy, now, stats.failures)
    return state


def _human(delta: timedelta) -> str:
    minutes = max(int(delta.total_seconds() // 60), 0)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def skipped_pairs(db: str | Path | None, pair_keys: Iterable[str], now: datetime | None = None) -> dict[str, str]:
    """Pairs a scheduled cycle must skip now (quarantined, retry not yet due) -> the status to show.

    For sensors and the CLI: one short read of the staging file. If it can't be opened the pairs run,
    and their guardrail_quarantine check still stops a quarantined one.
    """
    from xts_pipeline import store

    try:
        with store.connect(db) as con:
            decisions = {k: is_skipped(con, k, now) for k in pair_keys}
    except store.StoreError:
        return {}
    return {k: d.message for k, d in decisions.items() if d.skipped}
