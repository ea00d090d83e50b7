"""How a plan row's JSON columns are read: a decoded value, DuckDB's JSON text, or NULL (DESIGN.md `plan`).

A leaf (orjson only), so the plan fingerprint (fingerprint.py) and the guardrails' row readers
(guardrails/rows.py) decode `changes`, `desired` and `current` the same way without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson


def decoded(value: Any, default: Any) -> Any:
    """A JSON column's value: text or bytes decoded, a decoded value as is, `default` for NULL or ''."""
    if value is None:
        return default
    if isinstance(value, str | bytes):
        return orjson.loads(value) if value else default
    return value


def desired(row: Mapping[str, Any]) -> Mapping[str, Any]:
    """The would-be target attributes of a plan row (a dict, or the JSON text DuckDB returns). Read-only."""
    return decoded(row.get("desired"), {}) or {}


def changes(row: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A plan row's `{property, old, new}` changes; [] for none."""
    return decoded(row.get("changes"), []) or []


def current(row: Mapping[str, Any]) -> Mapping[str, Any]:
    """The target user's record as the snapshot read it (Graph names), {} for a create."""
    return decoded(row.get("current"), {}) or {}
