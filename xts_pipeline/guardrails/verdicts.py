"""The guarded plan's report in DuckDB: each guardrail's verdict on one plan, and the users it holds.

The one owner of `guardrail_verdicts` and `plan_exclusions`. The guarded-plan step records a report here
once per plan; the guardrail checks show it; apply reads it back, for the same cycle and fingerprint as
the plan it is about to write, and refuses when a verdict stops the pair or when there is none for this
plan (the guardrails have not judged it yet). Nothing reads guardrail outcomes from Dagster's event log.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import orjson

from xts_pipeline import plan_meta, queries
from xts_pipeline.vocabulary import shown_pair

from .report import GuardrailResult

GUARDRAIL_NAMES = ("sources", "loop_guard", "volume", "deletions", "impersonation", "privilege", "attribute_policy",
                   "attribute_validity")
QUARANTINE = "quarantine"


@dataclass(frozen=True)
class Verdict:
    """One guardrail's verdict on one plan, as the checks show it and apply obeys it."""

    check_name: str  # "volume", ..., or "quarantine"
    passed: bool
    stops_pair: bool  # nothing of the plan may be written
    message: str
    severity: str = "ERROR"  # "ERROR" stops the pair when it fails, "WARN" holds users or only warns
    approve_command: str | None = None  # set when an approval of this exact plan would let it through
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Report:
    """The verdicts recorded for one plan (cycle id and fingerprint) of one pair."""

    pair_key: str
    cycle_id: str | None
    fingerprint: str
    verdicts: tuple[Verdict, ...]
    held_users: int = 0

    @property
    def blocked(self) -> bool:
        return any(v.stops_pair for v in self.verdicts)

    def stops(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.stops_pair]


def from_result(result: GuardrailResult, approve_command: str | None = None,
                metadata: Mapping[str, Any] | None = None) -> Verdict:
    """A runner result as a verdict; `approve_command` is kept only where an approval would help."""
    stops = result.blocking
    severity = "ERROR" if result.severity == "ERROR" and (result.scope == "pair" or result.blocks_cycle) else "WARN"
    return Verdict(result.name, result.passed, stops, result.message, severity,
                   approve_command if stops and result.approvable else None, dict(metadata or result.to_metadata()))


def record(con: duckdb.DuckDBPyConnection, report: Report, exclusions: Sequence[Mapping[str, Any]]) -> int:
    """Replace the pair's verdicts and holds with this plan's, in one transaction; returns the holds written."""
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(queries.load("verdicts/clear_verdicts"), [report.pair_key])
        con.executemany(
            queries.load("verdicts/record"),
            [[report.pair_key, report.cycle_id, report.fingerprint, v.check_name, v.passed, v.stops_pair, v.severity,
              v.message, v.approve_command, orjson.dumps(v.metadata, default=str).decode()] for v in report.verdicts])
        n = _replace_exclusions(con, report.pair_key, exclusions)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return n


def _replace_exclusions(con: duckdb.DuckDBPyConnection, pair_key: str, rows: Sequence[Mapping[str, Any]],
                        names: Iterable[str] = GUARDRAIL_NAMES) -> int:
    names = list(names)
    con.execute(queries.load("verdicts/clear_holds_of"), [pair_key, names])
    if rows:
        con.executemany(queries.load("verdicts/hold"),
                        [[r["pair_key"], r["cycle_id"], r["change_id"], r["check_name"], r["reason"][:500]]
                         for r in rows])
    return len(rows)


def replace_exclusions(con: duckdb.DuckDBPyConnection, pair_key: str, rows: Sequence[Mapping[str, Any]],
                       names: Iterable[str] = GUARDRAIL_NAMES) -> int:
    """Replace the pair's guardrail holds (rows of `GuardrailReport.exclusions()`) in one transaction."""
    con.execute("BEGIN TRANSACTION")
    try:
        n = _replace_exclusions(con, pair_key, rows, names)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return n


def clear(con: duckdb.DuckDBPyConnection, pair_key: str) -> None:
    """A new plan replaces the old one: its verdicts and holds no longer apply (the planner calls this)."""
    con.execute(queries.load("verdicts/clear_holds"), [pair_key])
    con.execute(queries.load("verdicts/clear_verdicts"), [pair_key])


def load(con: duckdb.DuckDBPyConnection, pair_key: str) -> Report | None:
    """The recorded report of the pair, whatever plan it judged (None before the guardrails ever ran)."""
    rows = con.execute(queries.load("verdicts/load"), [pair_key]).fetchall()
    if not rows:
        return None
    held = con.execute(queries.load("verdicts/held_count"), [pair_key, rows[0][0]]).fetchone()[0]
    verdicts = tuple(Verdict(name, bool(passed), bool(stops), msg or "", sev or "ERROR", cmd,
                             orjson.loads(meta) if meta else {})
                     for _, _, name, passed, stops, sev, msg, cmd, meta in rows)
    return Report(pair_key, rows[0][0], rows[0][1] or "", verdicts, int(held))


def current(con: duckdb.DuckDBPyConnection, pair_key: str) -> tuple[Report | None, str | None]:
    """The report on the pair's *current* plan, or None and why there is none (no plan, not judged, stale)."""
    shown = shown_pair(pair_key)
    pm = plan_meta.read(con, pair_key)
    if pm is None:
        return None, f"pair {shown} has no plan"
    meta = (pm.cycle_id, pm.fingerprint)
    report = load(con, pair_key)
    if report is None:
        return None, (f"the guardrails have not judged the current plan of {shown} (cycle {meta[0]}); "
                      "materialize guarded_plan before applied_changes")
    if report.cycle_id != meta[0] or (meta[1] and report.fingerprint != meta[1]):
        return None, (f"the guardrail verdicts of {shown} are for another plan (cycle {report.cycle_id}, plan "
                      f"{report.fingerprint}) than the current one (cycle {meta[0]}, plan {meta[1]}); "
                      "materialize guarded_plan before applied_changes")
    return report, None


def apply_blocks(con: duckdb.DuckDBPyConnection, pair_key: str) -> list[str]:
    """Why apply must not write the pair's current plan; empty when its guardrails let it through."""
    report, missing = current(con, pair_key)
    if report is None:
        return [missing or f"no guardrail verdicts for {pair_key}"]
    return [f"guardrail_{v.check_name}: {v.message}" for v in report.stops()]
