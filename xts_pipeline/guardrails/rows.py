"""Reading plan rows (DESIGN.md `plan` table) the same way in every guardrail.

One definition of an incoming (writing) row, shared by every guardrail and by inputs.py: a row writes
when its `changes` are non-empty or its action is create, adopt, restore, disable or delete, whatever
else the planner calls it. Guardrails judge what the target user will be *after* the write: the
target's current record (`current`, from target_users) overlaid with what the row writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson

from xts_pipeline.plan_columns import changes, current, desired

from .report import cap

__all__ = ["changes", "current", "desired"]  # the JSON columns' readers, shared with the plan fingerprint

ALWAYS_WRITING = frozenset({"create", "adopt", "restore", "disable", "delete"})
ADDING_ACTIONS = frozenset({"create", "restore"})
# Rows that write a whole record (every desired attribute), not just the changed ones.
WHOLE_RECORD_ACTIONS = frozenset({"create", "adopt", "restore"})
REMOVING_ACTIONS = frozenset({"disable", "delete"})
# Kept for callers of the old name: every action that may write.
WRITING_ACTIONS = ALWAYS_WRITING | {"update"}


def writes(row: Mapping[str, Any]) -> bool:
    """THE definition of a writing row (shared contract): non-empty changes, or an always-writing action."""
    return row.get("action") in ALWAYS_WRITING or bool(changes(row))


def written(row: Mapping[str, Any]) -> Mapping[str, Any]:
    """What this row writes: every desired attribute on create/adopt/restore, the changed ones otherwise.

    A disable always writes accountEnabled=false, plus any other change the row carries (a planner that
    folds other changes into a disable row does not hide them from the guardrails).
    """
    want = desired(row)
    action = row.get("action")
    if action in WHOLE_RECORD_ACTIONS:
        return want
    out: dict[str, Any] = {}
    for change in changes(row):
        prop = change.get("property")
        if prop:
            out[prop] = want.get(prop, change.get("new"))
    if action == "disable":
        out["accountEnabled"] = False
    return out


def after(row: Mapping[str, Any]) -> dict[str, Any] | None:
    """The target user's record after this row is applied; None for a delete (no record is left)."""
    if "_after" in row:
        return row["_after"]
    if row.get("action") == "delete":
        return None
    return {**current(row), **written(row)}


def rechecks_whole_record(row: Mapping[str, Any]) -> bool:
    """Create, adopt, restore and re-enable are judged on the whole record, not just what changed.

    A re-enable writes only accountEnabled, but the attributes it brings back to life may have been set
    while the account was disabled.
    """
    if row.get("action") in WHOLE_RECORD_ACTIONS:
        return True
    now = current(row).get("accountEnabled")
    return now is False and written(row).get("accountEnabled") is True


def parsed(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Plan rows with `desired`, `changes` and `current` decoded once, so no guardrail re-parses JSON.

    The `changes` of a create, adopt or restore stay as DuckDB's text: such a row writes its whole desired
    record (`written`), so no guardrail reads them, and they are the largest column of a big first load
    (`changes()` still decodes them on demand, e.g. for the plan fingerprint).
    """
    out = []
    loads = orjson.loads
    for r in rows:
        raw = r.get("changes")
        action = r.get("action")
        whole = action in WHOLE_RECORD_ACTIONS
        # desired(r) and current(r), inlined for JSON text (the common case): a 100k-user plan's rows
        d, c = r.get("desired"), r.get("current")
        want = ((loads(d) if d else None) or {}) if type(d) is str else desired(r)
        now = {} if c is None else ((loads(c) if c else None) or {}) if type(c) is str else current(r)
        row = {**r, "desired": want, "changes": raw if whole and isinstance(raw, str | bytes) else changes(r),
               "current": now}
        # every guardrail reads the same post-write record; a whole-record row's is `after`'s without the
        # re-reads (the bulk of a first load: `written` is its desired record)
        row["_after"] = {**now, **want} if whole and "_after" not in r else after(row)
        out.append(row)
    return out


def incoming(rows: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """Every row that writes into the target (see `writes`)."""
    return (r for r in rows if writes(r))


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
