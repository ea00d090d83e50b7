"""One reader of `plan_meta`, the planner's row per pair about its current plan.

Why: apply, the guardrails, the checks, `xts status`, on-demand provisioning and the summaries all ask the
same few questions of it (which cycle made the plan, its fingerprint, whether the pair may write); one
query and one typed row keep their answers in step when a column is added. The planner writes the row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from xts_pipeline import queries


@dataclass(frozen=True)
class PlanMeta:
    """A pair's plan_meta row (column descriptions in xts_pipeline/sql/schema.sql)."""

    pair_key: str
    cycle_id: str | None
    fingerprint: str | None
    sync_allowed: bool | None
    blocked_reason: str | None
    planned_at: datetime | None
    full_plan: bool | None
    full_at: datetime | None
    only_user: str | None
    drift: int


def read(con: Any, pair_key: str) -> PlanMeta | None:
    """The pair's plan_meta row, or None before its first plan."""
    row = con.execute(queries.load("plan_meta/current"), {"pair_key": pair_key}).fetchone()
    return None if row is None else PlanMeta(*row)
