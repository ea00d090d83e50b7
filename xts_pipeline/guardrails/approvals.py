"""Approving one exact blocked plan: a fingerprint of its content, and who approved it and when.

The fingerprint covers what would be written (pair, action, ids, changes, desired attributes), not
cycle ids, change ids or timestamps, so re-planning the same content yields the same fingerprint and
any change to the content voids the approval.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import duckdb
import orjson

from xts_pipeline import plan_meta, queries, store
from xts_pipeline.paths import shell_command

from .report import GuardrailResult
from .rows import changes, desired

FINGERPRINT_CHARS = 32  # 128 bits of SHA-256: enough that no one can craft a plan matching an approved one
FINGERPRINT_RE = re.compile(rf"^[0-9a-f]{{{FINGERPRINT_CHARS}}}$")
CONTENT_KEYS = ("pair_key", "action", "source_tenant_id", "source_object_id", "target_user_id")



def _canonical_row(row: Mapping[str, Any]) -> bytes:
    content = {k: row.get(k) for k in CONTENT_KEYS}
    content["changes"] = sorted(changes(row), key=lambda c: orjson.dumps(c, option=orjson.OPT_SORT_KEYS))
    content["desired"] = desired(row)
    return orjson.dumps(content, option=orjson.OPT_SORT_KEYS, default=str)


def plan_fingerprint(plan_rows: Iterable[Mapping[str, Any]]) -> str:
    """Stable, order-independent hash of a plan's content; 'skip' rows write nothing and are left out.

    The one plan fingerprint: the planner stores it in `plan_meta.fingerprint`, the guardrail checks show
    it, `xts approve` records it. Each row is hashed on its own and the sorted row digests are hashed
    again, so a 100,000-row plan needs 32 bytes per row in memory, not its whole text (rows may stream in).
    """
    digests = sorted(hashlib.sha256(_canonical_row(r)).digest() for r in plan_rows if r.get("action") != "skip")
    total = hashlib.sha256(len(digests).to_bytes(8, "big"))
    for d in digests:
        total.update(d)
    return total.hexdigest()[:FINGERPRINT_CHARS]


def approve_command(pair_name: str, fingerprint: str, config_args: Sequence[str] = ()) -> str:
    """The exact command that approves one plan, paste-safe (`->` would be a shell redirect unquoted)."""
    return shell_command("xts", "approve", *config_args, "--pair", pair_name, "--plan", fingerprint,
                         "--reason", "...")


def is_fingerprint(text: str | None) -> bool:
    """True for a fingerprint as plan_fingerprint writes it (32 lowercase hex characters)."""
    return bool(text) and FINGERPRINT_RE.match(text) is not None


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
    if not FINGERPRINT_RE.match(fingerprint):
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
