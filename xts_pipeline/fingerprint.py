"""The plan fingerprint: one stable digest of what a plan would write (vocabulary.py re-exports it).

It covers what would be written (pair, action, ids, changes, desired attributes), not cycle ids, change
ids or timestamps, so re-planning the same content yields the same fingerprint and any change to the
content voids an approval of it. The planner stores it in `plan_meta.fingerprint`, the guardrail checks
show it, `xts approve` records it. A leaf over plan_columns.py: nothing here imports the guardrails.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from xts_pipeline.plan_columns import changes, desired

FINGERPRINT_CHARS = 32  # 128 bits of SHA-256: enough that no one can craft a plan matching an approved one
FINGERPRINT_RE = re.compile(rf"^[0-9a-f]{{{FINGERPRINT_CHARS}}}$")
# The plan columns a row's content is made of, besides its decoded `changes` and `desired`.
CONTENT_KEYS = ("pair_key", "action", "source_tenant_id", "source_object_id", "target_user_id")


def canonical_row(row: Mapping[str, Any]) -> bytes:
    """One plan row's content as canonical JSON: sorted keys, its changes in one order, str() for the rest."""
    content = {k: row.get(k) for k in CONTENT_KEYS}
    content["changes"] = sorted(changes(row), key=lambda c: orjson.dumps(c, option=orjson.OPT_SORT_KEYS))
    content["desired"] = desired(row)
    return orjson.dumps(content, option=orjson.OPT_SORT_KEYS, default=str)


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
