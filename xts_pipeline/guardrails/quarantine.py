"""Quarantine a failing pair, as Entra does: skip it with back-off, disable it after four weeks.

Entra (app-provisioning/application-provisioning-quarantine-status.md):
- "5,000 failures are the minimum to start evaluating whether to quarantine because of too many failures";
  then "If more than 40% of provisioning events fail, or there are more than 40,000 failures, the
  provisioning job will go into quarantine. Reference failures won't be counted as part of the 40%
  threshold or 40,000 threshold" and "There's an absolute threshold of 60,000 failures that accounts
  for both reference and non-reference failures".
- "After the failure, the first retry will happen in 6 hours. The second retry happens 12 hours after
  the first failure. The third retry happens 24 hours after the first failure. There will be retries
  every 24 hours after the 3rd retry. The retries will go on for 28 days after the first failure".
- Restart can "clear escrows (to restart the escrow counter that accrues toward quarantine status)".
So counts accrue across applies in `quarantine_escrow` until an apply with no failure or a release, and
every retry time is measured from the first failure. The thresholds scale through `QuarantinePolicy`.
One row per pair in `quarantine`; the caller owns the (short-lived) connection.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from xts_pipeline import queries, store
from xts_pipeline.paths import release_command
from xts_pipeline.vocabulary import shown_pair

from .policy import QuarantinePolicy

QUARANTINED, DISABLED, RELEASED = "quarantined", "disabled", "released"


@dataclass(frozen=True)
class ApplyStats:
    """Outcome counts of one apply of one pair."""

    events: int
    failures: int
    credentials_failed: bool = False
    detail: str = ""  # the first error seen (one line naming tenant and endpoint), kept in the reason
    reference_failures: int = 0  # of `failures`, those of reference writes (manager): not in the 40 % / 40,000 rules


ABSOLUTE_MAX_FAILURES = 60_000  # Entra's absolute threshold, reference failures included


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
    """Create the tables (schema.sql's definition) in a connection store.connect did not open."""
    store.ensure(con, "quarantine", "quarantine_escrow")


def evaluate_quarantine(stats: ApplyStats, policy: QuarantinePolicy) -> str | None:
    """Why this apply should quarantine the pair, or None when it should not."""
    cause = f": {stats.detail[:300]}" if stats.detail else ""
    if stats.credentials_failed:
        return ("credentials failed: the target refused the pair's app (its token, or every write for lack of "
                "permission)" + cause)
    if stats.failures < policy.min_failures:
        return None
    if stats.failures > max(ABSOLUTE_MAX_FAILURES, policy.max_failures):
        return (f"{stats.failures} failures (reference failures included), more than the absolute "
                f"{max(ABSOLUTE_MAX_FAILURES, policy.max_failures)}" + cause)
    plain = stats.failures - stats.reference_failures
    plain_events = stats.events - stats.reference_failures
    if plain > policy.max_failures:
        return f"{plain} failures, more than max_failures={policy.max_failures}" + cause
    rate = plain / plain_events if plain_events > 0 else 0.0
    if rate > policy.failure_rate:
        return (f"{plain} of {plain_events} events failed ({rate:.0%}), more than "
                f"failure_rate={policy.failure_rate:.0%} after at least min_failures={policy.min_failures}"
                + cause)
    return None


def retry_at(first_failure: datetime, attempts: int, policy: QuarantinePolicy) -> datetime:
    """When retry number `attempts + 1` is due, measured from the first failure (6 h, 12 h, 24 h, then +24 h)."""
    hours = policy.backoff_hours
    if attempts < len(hours):
        return first_failure + timedelta(hours=hours[attempts])
    return first_failure + timedelta(hours=hours[-1] * (attempts - len(hours) + 2))


def accrue(con: duckdb.DuckDBPyConnection, pair_key: str, stats: ApplyStats, now: datetime) -> ApplyStats:
    """Add this apply's counts to the pair's escrow; an apply without failures clears it. Returns the totals."""
    ensure_table(con)
    if stats.failures == 0 and not stats.credentials_failed:
        con.execute(queries.load("quarantine/escrow_clear"), {"pair_key": pair_key})
        return stats
    row = con.execute(queries.load("quarantine/escrow"), {"pair_key": pair_key}).fetchone()
    events, failures, refs, first = row if row else (0, 0, 0, now)
    total = ApplyStats(events + stats.events, failures + stats.failures, stats.credentials_failed, stats.detail,
                       refs + stats.reference_failures)
    con.execute(queries.load("quarantine/escrow_put"), {
        "pair_key": pair_key, "events": total.events, "failures": total.failures,
        "reference_failures": total.reference_failures, "first_failure_at": first, "updated_at": now})
    return total


def first_failure_at(con: duckdb.DuckDBPyConnection, pair_key: str, default: datetime) -> datetime:
    ensure_table(con)
    row = con.execute(queries.load("quarantine/first_failure"), {"pair_key": pair_key}).fetchone()
    return row[0] if row and row[0] else default


def get_state(con: duckdb.DuckDBPyConnection, pair_key: str) -> QuarantineState | None:
    ensure_table(con)
    cur = con.execute(queries.load("quarantine/state"), {"pair_key": pair_key})
    row = cur.fetchone()
    if row is None:
        return None
    values: dict[str, Any] = dict(zip([d[0] for d in cur.description], row, strict=True))
    values["attempts"] = values["attempts"] or 0
    values["failures"] = values["failures"] or 0
    values["status"] = values["status"] or (RELEASED if values["released_at"] else QUARANTINED)
    values["reason"] = values["reason"] or ""
    return QuarantineState(**values)


def _save(con: duckdb.DuckDBPyConnection, state: QuarantineState) -> QuarantineState:
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(queries.load("quarantine/clear"), {"pair_key": state.pair_key})
        con.execute(queries.load("quarantine/save"), asdict(state))
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
    return _save(con, QuarantineState(pair_key, QUARANTINED, reason, now, retry_at(now, 0, policy), 0,
                                      failures=failures))


def release(con: duckdb.DuckDBPyConnection, pair_key: str, released_by: str,
            now: datetime | None = None) -> QuarantineState | None:
    """Lift a quarantine (or a disable); returns the released state, or None if the pair was not quarantined."""
    state = get_state(con, pair_key)
    if state is None or not state.active:
        return None
    now = _now(now)
    con.execute(queries.load("quarantine/escrow_clear"), {"pair_key": pair_key})  # a release clears escrows
    return _save(con, QuarantineState(pair_key, RELEASED, state.reason, state.since, None, state.attempts,
                                      now, released_by, state.failures))


def is_skipped(con: duckdb.DuckDBPyConnection, pair_key: str, now: datetime | None = None, *,
               config_args: Sequence[str] = ()) -> SkipDecision:
    """Should a scheduled run skip this pair now? A due retry is not skipped: it is the back-off probe.

    `config_args` (xts_pipeline.paths.config_args) complete the printed `xts release` command.
    """
    state = get_state(con, pair_key)
    now = _now(now)
    if state is None or not state.active:
        return SkipDecision(False, f"{pair_key}: not quarantined", state)
    shown = shown_pair(pair_key)
    release = release_command(shown, config_args)
    if state.status == DISABLED:
        return SkipDecision(True, f"{shown}: disabled after quarantine since {state.since:%Y-%m-%d %H:%M} UTC "
                                  f"({state.reason}); fix the cause, then run `{release}`", state)
    if state.next_retry_at is not None and now < state.next_retry_at:
        wait = state.next_retry_at - now
        return SkipDecision(True, f"{shown}: quarantined since {state.since:%Y-%m-%d %H:%M} UTC ({state.reason}); "
                                  f"next retry at {state.next_retry_at:%Y-%m-%d %H:%M} UTC (in {_human(wait)}), "
                                  f"attempt {state.attempts + 1}; fix the cause, then `{release}`",
                            state)
    return SkipDecision(False, f"{shown}: quarantined, retry {state.attempts + 1} is due now", state)


def after_apply(con: duckdb.DuckDBPyConnection, pair_key: str, stats: ApplyStats, policy: QuarantinePolicy,
                now: datetime | None = None) -> QuarantineState | None:
    """Update the pair's state from one apply: enter, back off, disable, or release after a good retry."""
    now = _now(now)
    state = get_state(con, pair_key)
    if state is not None and state.active:
        # A quarantined pair's retry: any success lifts it ("If any of the retries above gets a successful
        # response, the job is automatically put out of quarantine").
        if evaluate_quarantine(stats, policy) is None:
            return release(con, pair_key, "automatic: retry succeeded", now)
        total = accrue(con, pair_key, stats, now)
        reason = evaluate_quarantine(total, policy) or state.reason
        attempts = state.attempts + 1
        if now - state.since >= timedelta(days=policy.disable_after_days):
            return _save(con, QuarantineState(pair_key, DISABLED, reason, state.since, None, attempts,
                                              failures=total.failures))
        return _save(con, QuarantineState(pair_key, QUARANTINED, reason, state.since,
                                          retry_at(state.since, attempts, policy), attempts, failures=total.failures))
    total = accrue(con, pair_key, stats, now)
    reason = evaluate_quarantine(total, policy)
    if reason is not None:
        return enter(con, pair_key, reason, policy, first_failure_at(con, pair_key, now), total.failures)
    return state


def _human(delta: timedelta) -> str:
    minutes = max(int(delta.total_seconds() // 60), 0)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def skipped_pairs(db: str | Path | None, pair_keys: Iterable[str], now: datetime | None = None, *,
                  config_args: Sequence[str] = ()) -> dict[str, str]:
    """Pairs a scheduled cycle must skip now (quarantined, retry not yet due) -> the status to show.

    For sensors and the CLI: one short read of the staging file. If it can't be opened the pairs run,
    and their guardrail_quarantine check still stops a quarantined one.
    """
    try:
        with store.connect(db) as con:
            decisions = {k: is_skipped(con, k, now, config_args=config_args) for k in pair_keys}
    except store.StoreError:
        return {}
    return {k: d.message for k, d in decisions.items() if d.skipped}
