"""Approving one exact blocked plan: its fingerprint (vocabulary.plan_fingerprint), who approved it and when.

The fingerprint covers what would be written, not cycle ids, change ids or timestamps, so re-planning the
same content yields the same fingerprint and any change to the content voids the approval.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import duckdb

from xts_pipeline import plan_meta, queries, store
from xts_pipeline.paths import shell_command
from xts_pipeline.vocabulary import FINGERPRINT_CHARS, is_fingerprint

from .report import GuardrailResult


def approve_command(pair_name: str, fingerprint: str, config_args: Sequence[str] = ()) -> str:
    """The exact command that approves one plan, paste-safe (`->` would be a shell redirect unquoted)."""
    return shell_command("xts", "approve", *config_args, "--pair", pair_name, "--plan", fingerprint,
                         "--reason", "...")


def stored_fingerprint(con: duckdb.DuckDBPyConnection, pair_key: str) -> str | None:
    """The fingerprint the planner stored for the pair's current plan (`plan_meta`), or None for an older file."""
    meta = plan_meta.read(con, pair_key)
    return meta.fingerprint if meta and is_fingerprint(meta.fingerprint) else None


def current_user() -> str:
    """Who is approving: $XTS_APPROVER if set (CI, service accounts), else the OS login name."""
    return os.environ.get("XTS_APPROVER") or getpass.getuser()


def ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    """Create approvals and approved_cycles (schema.sql's definition) in a connection store.connect did not open."""
    store.ensure(con, "approvals", "approved_cycles")


def record_approved_cycle(con: duckdb.DuckDBPyConnection, pair_key: str, cycle_id: str | None,
                          fingerprint: str) -> None:
    """Remember that this cycle of the pair applies an approved plan (its creates were approved once)."""
    if not cycle_id:
        return
    ensure_table(con)
    con.execute(queries.load("approvals/record_cycle"),
                {"pair_key": pair_key, "cycle_id": cycle_id, "fingerprint": fingerprint})


def record_approval(
    con: duckdb.DuckDBPyConnection,
    pair_key: str,
    fingerprint: str,
    reason: str,
    approved_by: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Store an approval of one plan of one pair; returns what was recorded."""
    fingerprint = fingerprint.strip().lower()
    if not is_fingerprint(fingerprint):
        raise ValueError(f"approval for pair {pair_key}: plan fingerprint {fingerprint[:80]!r} is not "
                         f"{FINGERPRINT_CHARS} hex characters; copy it from the failed check's metadata")
    if not reason.strip():
        raise ValueError(f"approval for pair {pair_key}: give a --reason that says why this plan is wanted")
    ensure_table(con)
    record = {
        "pair_key": pair_key,
        "fingerprint": fingerprint,
        "approved_by": approved_by or current_user(),
        "approved_at": (now or datetime.now(UTC)).replace(tzinfo=None),
        "reason": reason.strip(),
    }
    con.execute(queries.load("approvals/record"), record)
    return record


def find_approval(con: duckdb.DuckDBPyConnection, pair_key: str, fingerprint: str) -> dict[str, Any] | None:
    """The latest approval of exactly this plan of this pair, or None."""
    ensure_table(con)
    cur = con.execute(queries.load("approvals/find"), {"pair_key": pair_key, "fingerprint": fingerprint.strip().lower()})
    row = cur.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cur.description], row, strict=True))


def apply_approval(results: Iterable[GuardrailResult], approval: Mapping[str, Any] | None) -> list[GuardrailResult]:
    """Pass the failed results that stop the whole pair under `approval` (see GuardrailResult.with_approval)."""
    results = list(results)
    if approval is None:
        return results
    return [r.with_approval(approval) for r in results]
