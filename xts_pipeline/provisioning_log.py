"""The provisioning log, in Entra's vocabulary, kept in DuckDB.

Entra's provisioning logs speak of actions Create / Update / Disable / Delete / StagedDelete / Other and
statuses Success / Failure / Skipped / Warning, with the cycle id, change id, modified properties
(old and new) and duration. We use the same words so people can read both side by side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

from xts_pipeline import queries

# Entra logs a matched existing user's attribute write as Update; `operation` keeps "adopt" next to it.
ENTRA_ACTION = {"create": "Create", "adopt": "Update", "update": "Update", "manager": "Update", "disable": "Disable",
                "delete": "Delete", "restore": "Other", "skip": "Other", "drift": "Other",
                "staged_delete": "StagedDelete"}
ENTRA_STATUS = {"success": "Success", "failed": "Failure", "skipped": "Skipped", "warning": "Warning"}


@dataclass
class LogEntry:
    """One provisioning-log row; `operation` keeps our finer action (e.g. restore) next to Entra's word."""

    cycle_id: str
    change_id: str
    pair_key: str
    operation: str
    status: str  # success | failed | skipped | warning
    source_tenant_id: str | None = None
    source_object_id: str | None = None
    source_upn: str | None = None
    target_tenant: str | None = None
    target_user_id: str | None = None
    modified_properties: list[dict] = field(default_factory=list)
    error_code: str | None = None
    error_message: str | None = None
    duration_ms: float | None = None
    reason: str | None = None
    logged_at: datetime = field(default_factory=lambda: datetime.now(UTC).replace(tzinfo=None))
    # Entra's action word when it is not the operation's own: "StagedDelete" for a delete or disable that
    # a blocked cycle holds back (Entra's accidental-deletion prevention shows them so).
    entra_action: str | None = None
    hold: str | None = None  # one of HOLDS for a write that was kept back; the reason says by what

    def row(self) -> list:
        return [
            self.cycle_id, self.change_id, self.pair_key, self.logged_at,
            self.entra_action or ENTRA_ACTION.get(self.operation, "Other"),
            ENTRA_STATUS[self.status], self.operation, self.source_tenant_id, self.source_object_id,
            self.source_upn, self.target_tenant, self.target_user_id,
            orjson.dumps(self.modified_properties).decode(), self.error_code, self.error_message,
            self.duration_ms, self.reason, self.hold,
        ]


def write(con, entries: list[LogEntry]) -> None:
    """Append entries in the caller's (short) connection."""
    if entries:
        con.executemany(queries.load("provisioning_log/append"), [e.row() for e in entries])


def summary(con, pair_key: str, cycle_id: str) -> dict[str, int]:
    """Counts by 'Action/Status' for one cycle of one pair."""
    rows = con.execute(queries.load("provisioning_log/summary"), {"pair_key": pair_key, "cycle_id": cycle_id}).fetchall()
    return {k: int(v) for k, v in rows}


def drop_held(con, pair_key: str, cycle_id: str) -> None:
    """Remove one cycle's held entries, so logging the cycle as held again replaces them (idempotent per cycle)."""
    con.execute(queries.load("provisioning_log/drop_held"), {"pair_key": pair_key, "cycle_id": cycle_id})
