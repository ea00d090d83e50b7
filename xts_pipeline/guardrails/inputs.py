"""Read one pair's guardrail inputs from the DuckDB staging layer, and write the per-user exclusions back.

Tables and columns are store.py's (DESIGN.md "DuckDB staging layer"); the caller owns the connection.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any

import duckdb
import orjson

from xts_pipeline.external import external_sql

from .approvals import ensure_table, stored_fingerprint
from .gc_pause import gc_paused
from .rows import ALWAYS_WRITING, WHOLE_RECORD_ACTIONS
from .runner import GuardrailReport, PairInputs
from .validity import values_ok_sql
from .verdicts import GUARDRAIL_NAMES, replace_exclusions
from .volume import TargetVolume

# The shared definition of a writing row (rows.writes), in SQL: what the guardrails are given to judge.
_WRITING_SQL = (f"(p.action IN ({', '.join(repr(a) for a in sorted(ALWAYS_WRITING))}) "
                "OR coalesce(json_array_length(p.changes), 0) > 0)")


def _dicts(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    cols = [c[0] for c in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


_WHOLE_SQL = f"p.action IN ({', '.join(repr(a) for a in sorted(WHOLE_RECORD_ACTIONS))})"


def _plan_rows(con: duckdb.DuckDBPyConnection, pair_key: str, target: str,
               whole_changes: bool) -> list[dict[str, Any]]:
    """The pair's writing plan rows, each with `current` (the target's record) and `values_ok`.

    A create, adopt or restore writes its whole desired record, so no guardrail reads its `changes` (the
    largest column of a big first load, more text than `desired`): without `whole_changes` they are not
    read and the row carries `changes` None (`changes()` gives []). Only the plan fingerprint reads them, and
    the caller then has the planner's stored one; with `whole_changes` every row carries its text. Rows come
    in the plan table's order either way.
    """
    # Each row's JSON text is cast once, in the inner query, and read by values_ok_sql outside it.
    def query(changes: str, where: str) -> duckdb.DuckDBPyConnection:
        return con.execute(
            f"""SELECT *, {values_ok_sql("action", "desired", "changes")} AS values_ok FROM (
               SELECT p.rowid AS _pos, p.pair_key, p.cycle_id, p.change_id, p.source_tenant_id, p.source_object_id,
                      p.target_user_id, p.action, {changes} AS changes, CAST(p.desired AS VARCHAR) AS desired,
                      p.reason, p.mail, p.user_principal_name, CAST(t.attrs AS VARCHAR) AS current
               FROM plan p LEFT JOIN target_users t ON t.tenant = ? AND t.id = p.target_user_id
               WHERE p.pair_key = ? AND p.action <> 'skip' AND {where})""", [target, pair_key])  # noqa: S608
    if whole_changes:
        cur = query("CAST(p.changes AS VARCHAR)", _WRITING_SQL)
        found = cur.fetchall()
    else:  # two scans, so the first never reads the `changes` column; merged back into the plan's order
        cur = query("CAST(NULL AS VARCHAR)", _WHOLE_SQL)
        found = cur.fetchall()
        found += query("CAST(p.changes AS VARCHAR)", f"NOT {_WHOLE_SQL} AND {_WRITING_SQL}").fetchall()
        found.sort(key=itemgetter(0))  # two sorted runs: one merge
    cols = [c[0] for c in cur.description][1:]
    return [dict(zip(cols, r[1:], strict=True)) for r in found]


def load_pair_inputs(con: duckdb.DuckDBPyConnection, pair_key: str, source: str, target: str,
                     window_hours: float = 24.0, target_pairs: Iterable[str] | None = None) -> PairInputs:
    """Everything `run_guardrails` reads about `pair_key`, from the latest plan and target snapshot.

    Each writing plan row carries `current`: the target user's record as the snapshot read it, so the
    guardrails judge the record after the write. `target_pairs` are the keys of every pair into `target`
    (default: keys ending in `__<target>`), for the volume caps summed over pairs.
    """
    fingerprint = stored_fingerprint(con, pair_key)
    with gc_paused():
        plan = _plan_rows(con, pair_key, target, whole_changes=fingerprint is None)
    source_users = _dicts(con.execute(
        f"""SELECT s.id, s.user_principal_name, s.user_type, s.creation_type,
                  json_extract_string(s.attrs, '$.externalUserState') AS external_user_state FROM staged_users s
           WHERE s.tenant = ? AND s.id IN (SELECT p.source_object_id FROM plan p WHERE p.pair_key = ?
                                           AND p.action NOT IN ('skip', 'delete') AND {_WRITING_SQL})""",  # noqa: S608
        [source, pair_key]))
    groups = _dicts(con.execute(
        """SELECT id, display_name, CAST(group_types AS VARCHAR) AS group_types, membership_rule,
                  is_assignable_to_role FROM target_groups WHERE tenant = ? AND membership_rule IS NOT NULL""",
        [target]))
    members = dict(con.execute(
        """SELECT m.member_id, min(g.display_name) FROM target_group_members m
           JOIN target_groups g ON g.tenant = m.tenant AND g.id = m.group_id
           WHERE m.tenant = ? AND g.is_assignable_to_role GROUP BY 1""", [target]).fetchall())
    # A role held by a (role-assignable) group is held by each of its members.
    holders = dict(con.execute(
        """WITH r AS (SELECT member_id, role_name FROM target_role_members WHERE tenant = $t),
           x AS (SELECT member_id, role_name FROM r
                 UNION ALL SELECT m.member_id, r.role_name || ' (through group)' FROM r
                 JOIN target_group_members m ON m.tenant = $t AND m.group_id = r.member_id)
           SELECT member_id, string_agg(DISTINCT role_name, ', ' ORDER BY role_name) FROM x GROUP BY 1""",
        {"t": target}).fetchall())
    wanted = sorted(set(members) | set(holders))
    protected_users = _dicts(con.execute(
        """SELECT id, display_name AS "displayName", mail, user_principal_name AS "userPrincipalName",
                  json_extract_string(attrs, '$.mailNickname') AS "mailNickname",
                  json_extract_string(attrs, '$.givenName') AS "givenName",
                  json_extract_string(attrs, '$.surname') AS "surname"
           FROM target_users WHERE tenant = ? AND id IN (SELECT unnest(?::VARCHAR[]))""",
        [target, wanted])) if wanted else []
    notes = [r[0] for r in con.execute("SELECT note FROM target_notes WHERE tenant = ? ORDER BY note",
                                       [target]).fetchall()]
    size = con.execute("SELECT count(*) FROM target_users WHERE tenant = ?", [target]).fetchone()[0]
    existing = con.execute("SELECT count(*) FROM links WHERE pair_key = ? AND coalesce(state, '') <> 'deleted'",
                           [pair_key]).fetchone()[0]
    pol = con.execute("SELECT is_sync_allowed, CAST(policy AS VARCHAR) FROM target_policy "
                      "WHERE tenant = ? AND source_tenant = ?", [target, source]).fetchone()
    from xts_pipeline.store import verified_domains

    return PairInputs(
        pair_key=pair_key, source=source, target=target, plan_rows=plan, fingerprint=fingerprint,
        source_users=source_users,
        target_users=protected_users, target_groups=groups, role_assignable_members=members,
        role_holders=holders, partner_policy=_partner(pol), target_size=int(size),
        existing_from_source=int(existing), notes=notes,
        verified_domains=frozenset(verified_domains(con, source)),
        target_volume=target_volume(con, pair_key, target, window_hours, target_pairs),
    )


def target_volume(con: duckdb.DuckDBPyConnection, pair_key: str, target: str, window_hours: float,
                  target_pairs: Iterable[str] | None = None) -> TargetVolume:
    """What `target` took from every pair: logged creates in the window (minus approved cycles), other pairs'
    planned creates not yet applied or held, and its internal members and external users now."""
    ensure_table(con)
    since = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=window_hours)
    logged = con.execute(
        """SELECT count(*) FROM provisioning_log l
           WHERE l.target_tenant = ? AND l.status = 'Success' AND l.operation IN ('create', 'restore')
             AND l.logged_at >= ?
             AND NOT EXISTS (SELECT 1 FROM approved_cycles a WHERE a.pair_key = l.pair_key AND a.cycle_id = l.cycle_id)""",
        [target, since]).fetchone()[0]
    pairs = list(target_pairs) if target_pairs is not None else None
    where = "p.pair_key IN (SELECT unnest($pairs::VARCHAR[]))" if pairs is not None else "ends_with(p.pair_key, $suffix)"
    pending = con.execute(
        f"""SELECT count(*) FROM plan p
            WHERE {where} AND p.pair_key <> $pair AND p.action IN ('create', 'restore')
              AND NOT EXISTS (SELECT 1 FROM provisioning_log l WHERE l.pair_key = p.pair_key AND l.change_id = p.change_id)
              AND NOT EXISTS (SELECT 1 FROM plan_exclusions x WHERE x.pair_key = p.pair_key AND x.change_id = p.change_id)""",  # noqa: S608
        {"pair": pair_key, **({"pairs": pairs} if pairs is not None else {"suffix": f"__{target}"})}
    ).fetchone()[0] if pairs is None or pairs else 0
    ext, internal = con.execute(
        f"""SELECT count(*) FILTER (WHERE {external_sql('t')}), count(*) FILTER (WHERE NOT {external_sql('t')})
            FROM target_users t WHERE t.tenant = ?""", [target]).fetchone()  # noqa: S608
    return TargetVolume(window_creates=int(logged), pending_other=int(pending), internal_members=int(internal or 0),
                        external_users=int(ext or 0))


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
    return replace_exclusions(con, report.pair_key, report.exclusions(), names)
