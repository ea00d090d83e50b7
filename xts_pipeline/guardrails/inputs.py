"""Read one pair's guardrail inputs from the DuckDB staging layer, and write the per-user exclusions back.

Tables and columns are store.py's (DESIGN.md "DuckDB staging layer"); the caller owns the connection.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import duckdb
import orjson

from .runner import GuardrailReport, PairInputs

GUARDRAIL_NAMES = ("sources", "loop_guard", "volume", "deletions", "impersonation", "privilege", "attribute_policy")


def _dicts(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    cols = [c[0] for c in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def load_pair_inputs(con: duckdb.DuckDBPyConnection, pair_key: str, source: str, target: str) -> PairInputs:
    """Everything `run_guardrails` reads about `pair_key`, from the latest plan and target snapshot."""
    plan = _dicts(con.execute(
        """SELECT pair_key, cycle_id, change_id, source_tenant_id, source_object_id, target_user_id, action,
                  CAST(changes AS VARCHAR) AS changes, CAST(desired AS VARCHAR) AS desired, reason,
                  mail, user_principal_name
           FROM plan WHERE pair_key = ? AND action <> 'skip'""", [pair_key]))
    source_users = _dicts(con.execute(
        """SELECT s.id, s.user_principal_name, s.user_type, s.creation_type FROM staged_users s
           WHERE s.tenant = ? AND s.id IN (SELECT source_object_id FROM plan WHERE pair_key = ?
                                           AND action IN ('create', 'update', 'restore'))""", [source, pair_key]))
    groups = _dicts(con.execute(
        """SELECT id, display_name, CAST(group_types AS VARCHAR) AS group_types, membership_rule,
                  is_assignable_to_role FROM target_groups WHERE tenant = ? AND membership_rule IS NOT NULL""",
        [target]))
    members = dict(con.execute(
        """SELECT m.member_id, min(g.display_name) FROM target_group_members m
           JOIN target_groups g ON g.tenant = m.tenant AND g.id = m.group_id
           WHERE m.tenant = ? AND g.is_assignable_to_role GROUP BY 1""", [target]).fetchall())
    holders = dict(con.execute(
        "SELECT member_id, string_agg(DISTINCT role_name, ', ' ORDER BY role_name) FROM target_role_members "
        "WHERE tenant = ? GROUP BY 1", [target]).fetchall())
    wanted = sorted(set(members) | set(holders))
    protected_users = _dicts(con.execute(
        """SELECT id, display_name AS "displayName", mail, user_principal_name AS "userPrincipalName",
                  json_extract_string(attrs, '$.mailNickname') AS "mailNickname"
           FROM target_users WHERE tenant = ? AND id IN (SELECT unnest(?::VARCHAR[]))""",
        [target, wanted])) if wanted else []
    notes = [r[0] for r in con.execute("SELECT note FROM target_notes WHERE tenant = ? ORDER BY note",
                                       [target]).fetchall()]
    size = con.execute("SELECT count(*) FROM target_users WHERE tenant = ?", [target]).fetchone()[0]
    existing = con.execute("SELECT count(*) FROM links WHERE pair_key = ? AND coalesce(state, '') <> 'deleted'",
                           [pair_key]).fetchone()[0]
    pol = con.execute("SELECT is_sync_allowed, CAST(policy AS VARCHAR) FROM target_policy "
                      "WHERE tenant = ? AND source_tenant = ?", [target, source]).fetchone()
    return PairInputs(
        pair_key=pair_key, source=source, target=target, plan_rows=plan, source_users=source_users,
        target_users=protected_users, target_groups=groups, role_assignable_members=members,
        role_holders=holders, partner_policy=_partner(pol), target_size=int(size),
        existing_from_source=int(existing), notes=notes,
    )


def _partner(row: tuple[Any, Any] | None) -> dict[str, Any] | None:
    """The partner's identitySynchronization object; the stored flag wins over the raw JSON."""
    if row is None:
        return None
    allowed, raw = row
    policy = orjson.loads(raw) if raw else {}
    if not isinstance(policy, dict):
        policy = {}
    if allowed is not None:
        policy = {**policy, "userSyncInbound": {**(policy.get("userSyncInbound") or {}), "isSyncAllowed": allowed}}
    return policy


def record_exclusions(con: duckdb.DuckDBPyConnection, report: GuardrailReport,
                      names: Iterable[str] = GUARDRAIL_NAMES) -> int:
    """Replace this pair's guardrail rows in `plan_exclusions` (apply skips them and logs Skipped + reason)."""
    names = list(names)
    rows = report.exclusions()
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DELETE FROM plan_exclusions WHERE pair_key = ? AND check_name IN ({', '.join('?' * len(names))})",  # noqa: S608
                    [report.pair_key, *names])
        if rows:
            con.executemany("INSERT INTO plan_exclusions (pair_key, cycle_id, change_id, check_name, reason) "
                            "VALUES (?, ?, ?, ?, ?)",
                            [[r["pair_key"], r["cycle_id"], r["change_id"], r["check_name"], r["reason"][:500]]
                             for r in rows])
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return len(rows)
