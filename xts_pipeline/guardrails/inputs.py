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

from xts_pipeline import queries, store
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
_VALUES_OK_SQL = values_ok_sql("action", "desired", "changes")


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
        return con.execute(queries.render("guardrail_inputs/plan_rows", values_ok=_VALUES_OK_SQL, changes=changes,
                                          where=where), [target, pair_key])
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
    source_users = _dicts(con.execute(queries.render("guardrail_inputs/source_users", writing=_WRITING_SQL),
                                      [source, pair_key]))
    groups = _dicts(con.execute(queries.load("guardrail_inputs/dynamic_groups"), [target]))
    members = dict(con.execute(queries.load("guardrail_inputs/role_assignable_members"), [target]).fetchall())
    # A role held by a (role-assignable) group is held by each of its members.
    holders = dict(con.execute(queries.load("guardrail_inputs/role_holders"), {"t": target}).fetchall())
    wanted = sorted(set(members) | set(holders))
    protected_users = _dicts(con.execute(queries.load("guardrail_inputs/protected_users"),
                                         [target, wanted])) if wanted else []
    notes = [r[0] for r in con.execute(queries.load("guardrail_inputs/notes"), [target]).fetchall()]
    size = store.count(con, "target_users", "tenant", target)
    existing = con.execute(queries.load("guardrail_inputs/existing_links"), [pair_key]).fetchone()[0]
    pol = con.execute(queries.load("guardrail_inputs/partner_policy"), [target, source]).fetchone()
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
    logged = con.execute(queries.load("guardrail_inputs/window_creates"), [target, since]).fetchone()[0]
    pairs = list(target_pairs) if target_pairs is not None else None
    where = "p.pair_key IN (SELECT unnest($pairs::VARCHAR[]))" if pairs is not None else "ends_with(p.pair_key, $suffix)"
    pending = con.execute(
        queries.render("guardrail_inputs/pending_other", pairs=where),
        {"pair": pair_key, **({"pairs": pairs} if pairs is not None else {"suffix": f"__{target}"})}
    ).fetchone()[0] if pairs is None or pairs else 0
    ext, internal = con.execute(queries.render("guardrail_inputs/external_counts", external=external_sql("t")),
                                [target]).fetchone()
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
