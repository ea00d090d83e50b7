"""The plan fingerprint: one stable digest of what a plan would write (vocabulary.py re-exports it).

It covers what would be written (pair, action, ids, changes, desired attributes), not cycle ids, change
ids or timestamps, so re-planning the same content yields the same fingerprint and any change to the
content voids an approval of it. The planner stores it in `plan_meta.fingerprint`, the guardrail checks
show it, `xts approve` records it. A leaf over plan_columns.py: nothing here imports the guardrails.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from xts_pipeline.plan_columns import decoded

FINGERPRINT_CHARS = 32  # 128 bits of SHA-256: enough that no one can craft a plan matching an approved one
FINGERPRINT_RE = re.compile(rf"^[0-9a-f]{{{FINGERPRINT_CHARS}}}$")
# The plan columns a row's content is made of, in this order; `changes` and `desired` are JSON.
CONTENT_KEYS = ("pair_key", "action", "source_tenant_id", "source_object_id", "target_user_id")
COLUMNS = (*CONTENT_KEYS, "changes", "desired")
_SORTED = orjson.OPT_SORT_KEYS


def _change_order(change: Any) -> bytes:
    return orjson.dumps(change, option=_SORTED)


def canonical(values: Sequence[Any]) -> bytes:
    """One plan row's content as canonical JSON, from its COLUMNS' values in order (JSON columns as text or
    decoded): sorted keys, the changes in one order, str() for anything else.

    The planner hashes its stored rows straight from their columns with this, the guardrails their row dicts
    through canonical_row: one encoding, so both give the same fingerprint.
    """
    pair_key, action, source_tenant_id, source_object_id, target_user_id, changes, desired = values
    changes = decoded(changes, []) or []
    if len(changes) > 1:  # spelled out, not dict(zip(...)) and sorted(): this runs for every row of a 100k plan
        changes = sorted(changes, key=_change_order)
    return orjson.dumps({"pair_key": pair_key, "action": action, "source_tenant_id": source_tenant_id,
                         "source_object_id": source_object_id, "target_user_id": target_user_id,
                         "changes": changes, "desired": decoded(desired, {}) or {}}, option=_SORTED, default=str)


def canonical_row(row: Mapping[str, Any]) -> bytes:
    """canonical() of a plan row given as a mapping of its columns."""
    return canonical([row.get(k) for k in COLUMNS])


def combined(row_digests: Iterable[bytes]) -> str:
    """The fingerprint of a plan whose writing rows' SHA-256 digests these are, in any order."""
    digests = sorted(row_digests)
    total = hashlib.sha256(len(digests).to_bytes(8, "big"))
    for d in digests:
        total.update(d)
    return total.hexdigest()[:FINGERPRINT_CHARS]


def plan_fingerprint(plan_rows: Iterable[Mapping[str, Any]]) -> str:
    """Stable, order-independent hash of a plan's content; 'skip' rows write nothing and are left out.

    Each row is hashed on its own and the sorted row digests are hashed again, so a 100,000-row plan needs
    32 bytes per row in memory, not its whole text (rows may stream in).
    """
    return combined(hashlib.sha256(canonical_row(r)).digest() for r in plan_rows if r.get("action") != "skip")


def is_fingerprint(text: str | None) -> bool:
    """True for a fingerprint as plan_fingerprint writes it (32 lowercase hex characters)."""
    return bool(text) and FINGERPRINT_RE.fullmatch(text) is not None
