"""Whether a pair's plan provably equals its last clean one, so its cycle run can be skipped.

A pair run costs Dagster's fixed price (8 steps, 13 checks, ~70 events) even when nothing changed. After
a clean run (applied, nothing failed, nothing blocked or in flight) its apply step records a fingerprint:
set-based hash aggregates over everything the desired state, the plan and the guardrails read for the
pair (the source's internal members, its assigned groups, the target's users, groups, roles and policy,
the pair's links, approvals and quarantine, the effective config, this package's code). A later cycle
skips the pair when the same fingerprint comes out of the fresh extraction and snapshot and nothing is
pending (writes in flight, last cycle's failures, holds by the time-bound volume cap, a due full re-diff).

Our own writes come back in the next snapshot: a target user some pair into this target linked, that
carries its link and shows every value that pair last wrote (links.applied), is the expected echo and
is left out of the hash; so is a user written after the snapshot the fingerprint was taken on, whose
echo is then checked against the next snapshot. Anything else about the target counts, and another
pair's user whose address equals one of this pair's users (adoption could look at it) always counts.
When in doubt, the pair runs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import duckdb

from xts_pipeline import queries, store
from xts_pipeline.external import external_sql_over
from xts_pipeline.planner import FULL_PLAN_EVERY_HOURS, NORM_MACRO
from xts_pipeline.vocabulary import BLOCKED

# Table pair_inputs (xts_pipeline/sql/schema.sql), one row per pair: `versions` (the source's staging and the target's snapshot a run started from) is set
# when a pair run starts, `fingerprint` when it ends clean on those same versions.

# Guardrails whose hold can lift with time alone (a rolling window): a pair holding users by one always runs.
TIME_BOUND_HOLDS = ("volume",)

# The queries are sql/unchanged/*.sql; the one SQL fragment that varies is xts_pipeline.external's rule over
# the staged and the rejected users' columns: those rows are never a pair's source users. Values are parameters.
_STAGED_EXTERNAL = external_sql_over("s.creation_type", "s.user_type", "s.user_principal_name",
                                     "json_extract_string(s.attrs, '$.externalUserState')")
_REJECTED_EXTERNAL = external_sql_over("json_extract_string(x.data, '$.creationType')",
                                       "json_extract_string(x.data, '$.userType')",
                                       "json_extract_string(x.data, '$.userPrincipalName')",
                                       "json_extract_string(x.data, '$.externalUserState')")
PREPARE_SQL = (queries.render("unchanged/prepare_users"), queries.render("unchanged/prepare_echo"),
               queries.render("unchanged/prepare_staged", staged_external=_STAGED_EXTERNAL),
               queries.render("unchanged/prepare_members"))
FINGERPRINT_SQL = queries.render("unchanged/fingerprint", rejected_external=_REJECTED_EXTERNAL)


@dataclass(frozen=True)
class Decision:
    """Whether the pair's run can be skipped, why (or why not), and the fingerprints compared."""

    pair_key: str
    skip: bool
    reason: str
    fingerprint: str = ""
    recorded_run: str = ""
    recorded_cycle: str = ""


@cache
def code_hash() -> str:
    """This package's source: a new planner or mapping engine may plan differently from the same inputs."""
    root = Path(__file__).parent
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        if "sandbox" not in f.relative_to(root).parts:
            h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def _dump(obj: Any) -> str:
    return obj.model_dump_json() if hasattr(obj, "model_dump_json") else repr(obj)


def config_hash(topology: Any, pair_key: str) -> str:
    """The pair's effective config: its settings (scope, mappings, actions), the target's inbound policy,
    both tenants' settings, the staging settings and which pairs share the target."""
    pair = topology.pair(pair_key)
    ids = {"tenant_id", "domain", "client_id", "app_object_id"}  # not where Graph is reached, nor credentials
    parts = [_dump(pair.settings), _dump(topology.inbound_policy(pair.target)),
             *(repr(topology.tenant(t).model_dump(include=ids)) for t in (pair.source, pair.target)),
             _dump(getattr(topology, "staging", None)),
             ",".join(sorted(p.key for p in topology.pairs() if p.enabled and p.target == pair.target))]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def prepare(con: duckdb.DuckDBPyConnection, topology: Any, pair_keys: list[str]) -> None:
    """Hash the pairs' tenants' users once for all their pairs (temporary tables of this connection)."""
    con.execute(NORM_MACRO)
    pairs = [topology.pair(k) for k in pair_keys]
    tenants = {"targets": sorted({p.target for p in pairs}), "sources": sorted({p.source for p in pairs})}
    for stmt in PREPARE_SQL:
        con.execute(stmt, {k: v for k, v in tenants.items() if f"${k}" in stmt})


def fingerprint(con: duckdb.DuckDBPyConnection, topology: Any, pair_key: str, prepared: bool = False) -> str:
    """The hash of every input of the pair's plan, as the store holds them now (module docstring)."""
    pair = topology.pair(pair_key)
    scope = getattr(pair, "scope", None)
    if not prepared:
        prepare(con, topology, [pair_key])
    row = con.execute(FINGERPRINT_SQL, {
        "pair": pair.key, "source": pair.source, "target": pair.target,
        "groups": sorted(getattr(scope, "groups", None) or []),
        "into": sorted(p.key for p in topology.pairs() if p.target == pair.target)}).fetchone()
    return hashlib.sha256("|".join([*(row or ()), config_hash(topology, pair_key), code_hash()]).encode()).hexdigest()


def pending(con: duckdb.DuckDBPyConnection, pair_key: str) -> str:
    """Why the pair must run whatever its inputs (empty: nothing pending)."""
    if con.execute(queries.load("unchanged/journal_open"), [pair_key]).fetchone()[0]:
        return "writes of an earlier run are in flight"
    meta = con.execute(queries.load("unchanged/plan_due"),
                       [datetime.now(UTC).replace(tzinfo=None), FULL_PLAN_EVERY_HOURS, pair_key]).fetchone()
    if meta is None:
        return "no plan yet"
    if meta[0]:
        return "the last plan was an on-demand one"
    if meta[1]:
        return f"the full re-diff (every {FULL_PLAN_EVERY_HOURS} h) is due"
    wm = store.get_watermark(con, f"applied:{pair_key}")
    if wm is None:
        return "never applied"
    failed = con.execute(queries.load("unchanged/cycle_failures"),
                         {"pair_key": pair_key, "cycle_id": wm[1], "blocked": BLOCKED}).fetchone()[0]
    if failed:
        return f"{failed} write(s) of the last cycle failed or are pending"
    timed = con.execute(queries.load("unchanged/timed_holds"), [pair_key, list(TIME_BOUND_HOLDS)]).fetchone()[0]
    if timed:
        return f"{timed} user(s) held by a rolling-window cap, which time alone can lift"
    return ""


def _versions(con: duckdb.DuckDBPyConnection, topology: Any, pair_key: str) -> str:
    """Which staging of the source and which snapshot of the target the store holds now."""
    pair = topology.pair(pair_key)
    rows = con.execute(queries.load("unchanged/versions"),
                       [[f"stage:{pair.source}", f"snapshot:{pair.target}"]]).fetchall()
    return repr(rows)


def forget(db: str | Path | None, topology: Any, pair_key: str) -> None:
    """A pair run starts: its old fingerprint no longer describes the store (only a clean end records anew).

    Keeps which source staging and target snapshot this run reads, so `record` can tell whether an
    extraction replaced them while the run was planning (then the plan saw other inputs than the hash).
    """
    with store.connect(db) as con:
        con.execute(queries.load("unchanged/forget"), [pair_key, _versions(con, topology, pair_key)])


def record(db: str | Path | None, topology: Any, pair_key: str, run_id: str, cycle_id: str) -> str:
    """After a clean run: the fingerprint a later cycle compares with (returned; empty when not recorded)."""
    with store.connect(db) as con:
        started = con.execute(queries.load("unchanged/started"), [pair_key]).fetchone()
        if started is None or started[0] != _versions(con, topology, pair_key):
            con.execute(queries.load("unchanged/drop"), [pair_key])
            return ""  # an extraction ran during this run: the next run records
        fp = fingerprint(con, topology, pair_key)
        con.execute(queries.load("unchanged/record"), [fp, run_id, cycle_id, pair_key])
    return fp


def decide(db: str | Path | None, topology: Any, pair_keys: list[str]) -> dict[str, Decision]:
    """For each pair: skip its run only when its fingerprint equals the last clean run's and nothing is pending."""
    out: dict[str, Decision] = {}
    with store.connect(db) as con:
        recorded = {r[0]: r[1:] for r in con.execute(queries.load("unchanged/recorded"), [list(pair_keys)]).fetchall()}
        prepare(con, topology, [k for k in pair_keys if k in recorded])
        for key in pair_keys:
            if key not in recorded:
                out[key] = Decision(key, False, "no clean run recorded since the last change")
                continue
            old, run_id, cycle = recorded[key]
            why = pending(con, key)
            if why:
                out[key] = Decision(key, False, why, recorded_run=run_id, recorded_cycle=cycle)
                continue
            fp = fingerprint(con, topology, key, prepared=True)
            same = fp == old
            out[key] = Decision(key, same, f"inputs unchanged since run {run_id}" if same else "inputs changed",
                                fingerprint=fp, recorded_run=run_id, recorded_cycle=cycle)
    return out
