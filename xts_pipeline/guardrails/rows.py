"""Reading plan rows (DESIGN.md `plan` table) the same way in every guardrail."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson

from .report import cap

WRITING_ACTIONS = frozenset({"create", "adopt", "update", "restore"})
# An adoption binds an existing target user to this source: judged like a create (every desired attribute).
ADDING_ACTIONS = frozenset({"create", "adopt", "restore"})
REMOVING_ACTIONS = frozenset({"disable", "delete"})


def _json(value: Any, default: Any) -> Any:
    if value is None:
        return default
    if isinstance(value, str | bytes):
        return orjson.loads(value) if value else default
    return value


def desired(row: Mapping[str, Any]) -> Mapping[str, Any]:
    """The would-be target attributes of a plan row (a dict, or the JSON text DuckDB returns). Read-only."""
    return _json(row.get("desired"), {})


def changes(row: Mapping[str, Any]) -> list[dict[str, Any]]:
    return _json(row.get("changes"), [])


def written(row: Mapping[str, Any]) -> Mapping[str, Any]:
    """What this row actually writes: every desired attribute on create/restore, the changed ones on update."""
    want = desired(row)
    if row.get("action") in ADDING_ACTIONS:
        return want
    out: dict[str, Any] = {}
    for change in changes(row):
        prop = change.get("property")
        if prop:
            out[prop] = want.get(prop, change.get("new"))
    return out


def parsed(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Plan rows with `desired` and `changes` decoded once, so each guardrail does not re-parse JSON."""
    return [{**r, "desired": desired(r), "changes": changes(r)} for r in rows]


def incoming(rows: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """Rows that write attributes into the target (create, update, restore)."""
    return (r for r in rows if r.get("action") in WRITING_ACTIONS)


def user_ref(row: Mapping[str, Any]) -> dict[str, Any]:
    """How a plan row's user is named in messages: source object id plus a readable name."""
    want = desired(row)
    return {
        "source_object_id": row.get("source_object_id"),
        "target_user_id": row.get("target_user_id"),
        "change_id": row.get("change_id"),
        "action": row.get("action"),
        "user": cap(want.get("userPrincipalName") or row.get("user_principal_name") or want.get("mail")
                    or want.get("displayName") or row.get("source_object_id")),
    }
