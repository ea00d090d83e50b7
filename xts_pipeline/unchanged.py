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

from xts_pipeline import store
from xts_pipeline.planner import FULL_PLAN_EVERY_HOURS, NORM_MACRO

# Table pair_inputs (xts_pipeline/sql/schema.sql), one row per pair: `versions` (the source's staging and the target's snapshot a run started from) is set
# when a pair run starts, `fingerprint` when it ends clean on those same versions.

# Guardrails whose hold can lift with time alone (a rolling window): a pair holding users by one always runs.
TIME_BOUND_HOLDS = ("volume",)

_EXT_ADDR = ("CASE WHEN regexp_matches(t.user_principal_name, '^(.+)_([^_#@]+)#EXT#@', 'i') THEN "
             "lower(regexp_extract(t.user_principal_name, '^(.+)_([^_#@]+)#EXT#@', 1, 'i')) || '@' || "
             "lower(regexp_extract(t.user_principal_name, '^(.+)_([^_#@]+)#EXT#@', 2, 'i')) END")
# xts_pipeline.external's rule over four SQL expressions: those rows are never a pair's source users.
_EXTERNAL = ("(lower(coalesce(CREATION, '')) = 'invitation' OR lower(coalesce(USERTYPE, '')) = 'guest' "
             "OR upper(coalesce(UPN, '')) LIKE '%#EXT#%' OR coalesce(trim(STATE), '') <> '')")
_STAGED_EXTERNAL = (_EXTERNAL.replace("CREATION", "s.creation_type").replace("USERTYPE", "s.user_type")
                    .replace("UPN", "s.user_principal_name")
                    .replace("STATE", "json_extract_string(s.attrs, '$.externalUserState')"))
_REJECTED_EXTERNAL = (_EXTERNAL.replace("CREATION", "json_extract_string(x.data, '$.creationType')")
                      .replace("USERTYPE", "json_extract_string(x.data, '$.userType')")
                      .replace("UPN", "json_extract_string(x.data, '$.userPrincipalName')")
                      .replace("STATE", "json_extract_string(x.data, '$.externalUserState')"))
# One md5 over the md5s (column h) of every row of ROWS, order-free.
_AGG = "(SELECT coalesce(md5(string_agg(h, ',' ORDER BY h)), '') FROM (ROWS))"

# Per tenant, once per decision (a mesh has many pairs per tenant): each target user's row hash and addresses,
# the expected echo of every pair into it, the hashed group and role memberships, the source's member rows.
PREPARE_SQL = (
    """CREATE OR REPLACE TEMP TABLE fp_users AS
       SELECT t.tenant, t.id, md5(CAST(t AS VARCHAR)) AS h, lower(t.mail) AS mail_l, EXT_ADDR AS ext_addr
       FROM target_users t WHERE list_contains($targets, t.tenant)""".replace("EXT_ADDR", _EXT_ADDR),
    # the expected echo: linked by a pair into the target, link on the user, every last-written value in place
    # (each document parsed once, values compared as the planner normalises them)
    """CREATE OR REPLACE TEMP TABLE fp_echo AS
       SELECT tenant, pair_key, id FROM (
         SELECT t.tenant, l.pair_key, t.id, CAST(t.attrs AS MAP(VARCHAR, JSON)) AS cur,
                CAST(l.applied AS MAP(VARCHAR, JSON)) AS last
         FROM links l JOIN target_users t ON t.tenant = l.target_tenant AND t.id = l.target_user_id
         WHERE list_contains($targets, l.target_tenant) AND l.state IN ('active', 'pending')
           AND t.link_source_object_id = l.source_object_id AND t.link_source_tenant_id = l.source_tenant_id
           AND t.link_sync_config IS NOT DISTINCT FROM l.pair_key
           AND json_extract_string(l.applied, '$.manager') IS NOT DISTINCT FROM json_extract_string(t.attrs, '$.manager.id'))
       WHERE coalesce(list_bool_and(list_transform(list_filter(map_keys(last), lambda k: k <> 'manager'),
                                                   lambda k: norm(cur[k]) IS NOT DISTINCT FROM norm(last[k]))), true)""",
    """CREATE OR REPLACE TEMP TABLE fp_staged AS
       SELECT s.tenant, md5(CAST(s AS VARCHAR)) AS h FROM staged_users s
       WHERE list_contains($sources, s.tenant) AND NOT STAGED_EXTERNAL""".replace("STAGED_EXTERNAL", _STAGED_EXTERNAL),
    """CREATE OR REPLACE TEMP TABLE fp_members AS
       SELECT tenant, member_id, md5(CAST(m AS VARCHAR)) AS h FROM target_group_members m
       WHERE list_contains($targets, tenant)
       UNION ALL
       SELECT tenant, member_id, md5(CAST(m AS VARCHAR)) FROM target_role_members m WHERE list_contains($targets, tenant)""",
)

# What the plan reads, one hash each. Only constants of this module go into the SQL; values are parameters.
_PARTS = (
    "SELECT h FROM fp_staged WHERE tenant = $source",
    "SELECT md5(CAST((x.id, x.user_principal_name, x.reasons) AS VARCHAR)) AS h FROM rejected_users x "
    "WHERE x.tenant = $source AND NOT REJECTED_EXTERNAL",
    "SELECT md5(CAST(g AS VARCHAR)) AS h FROM source_group_members g "
    "WHERE g.tenant = $source AND list_contains($groups, g.group_ref)",
    "SELECT md5(CAST((d.tenant, d.domain, d.is_default) AS VARCHAR)) AS h FROM tenant_domains d "
    "WHERE d.tenant IN ($source, $target)",
    "SELECT h FROM fp_users u WHERE u.tenant = $target AND u.id NOT IN (SELECT id FROM hidden)",
    "SELECT md5(sid) AS h FROM missing",
    "SELECT md5(CAST(e AS VARCHAR)) AS h FROM target_extensions e WHERE e.tenant = $target",
    "SELECT md5(CAST(g AS VARCHAR)) AS h FROM target_groups g WHERE g.tenant = $target",
    "SELECT h FROM fp_members m WHERE m.tenant = $target AND m.member_id NOT IN (SELECT id FROM hidden)",
    "SELECT md5(CAST((p.source_tenant_id, p.is_sync_allowed, p.policy) AS VARCHAR)) AS h FROM target_policy p "
    "WHERE p.tenant = $target AND p.source_tenant = $source",
    "SELECT md5(CAST((n.topic, n.note) AS VARCHAR)) AS h FROM target_notes n WHERE n.tenant = $target",
    "SELECT md5(CAST((l.source_tenant_id, l.source_object_id, l.target_tenant, l.target_user_id, l.state, "
    "l.deleted_at, CAST(l.applied AS VARCHAR)) AS VARCHAR)) AS h FROM links l WHERE l.pair_key = $pair",
    "SELECT md5(CAST(a AS VARCHAR)) AS h FROM approvals a WHERE a.pair_key = $pair",
    "SELECT md5(CAST(q AS VARCHAR)) AS h FROM quarantine q WHERE q.pair_key = $pair",
)

_CTES = """
WITH
snap AS (SELECT max(value) AS read_at FROM watermarks WHERE name = 'snapshot:' || $target),
addrs AS (SELECT DISTINCT lower(coalesce(mail, user_principal_name)) AS addr FROM desired_users WHERE pair_key = $pair),
-- written by a pair into this target after this snapshot was read: the next snapshot shows (and checks) it
written AS (
  SELECT DISTINCT j.pair_key, j.target_user_id AS id FROM write_journal j, snap
  WHERE list_contains($into, j.pair_key) AND j.state = 'done' AND j.target_user_id IS NOT NULL
    AND snap.read_at IS NOT NULL AND j.finished_at >= snap.read_at),
-- left out of the hash: the expected echo and what was written since the snapshot; another pair's user
-- still counts when its address is one of this pair's (adoption would look at it)
hidden AS (
  SELECT h.id FROM (SELECT pair_key, id FROM fp_echo WHERE tenant = $target UNION ALL SELECT * FROM written) h
  LEFT JOIN fp_users u ON u.tenant = $target AND u.id = h.id
  WHERE h.pair_key = $pair
     OR NOT (coalesce(u.mail_l IN (SELECT addr FROM addrs), false) OR coalesce(u.ext_addr IN (SELECT addr FROM addrs), false))),
-- this pair's links whose target user is gone (and was not written since the snapshot): re-provisioned
missing AS (
  SELECT l.source_object_id AS sid FROM links l
  WHERE l.pair_key = $pair AND l.state IN ('active', 'pending')
    AND l.target_user_id NOT IN (SELECT id FROM fp_users WHERE tenant = $target)
    AND l.target_user_id NOT IN (SELECT id FROM written))
SELECT
"""
FINGERPRINT_SQL = "".join([_CTES, ",\n".join(
    _AGG.replace("ROWS", part).replace("STAGED_EXTERNAL", _STAGED_EXTERNAL).replace("REJECTED_EXTERNAL", _REJECTED_EXTERNAL)
    for part in _PARTS)])


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
    if con.execute("SELECT count(*) FROM write_journal WHERE pair_key = ? AND state <> 'done'",
                   [pair_key]).fetchone()[0]:
        return "writes of an earlier run are in flight"
    meta = con.execute("""SELECT only_user, full_at IS NULL OR CAST(? AS TIMESTAMP) - full_at > INTERVAL (?) HOUR
                          FROM plan_meta WHERE pair_key = ?""", [datetime.now(UTC).replace(tzinfo=None), FULL_PLAN_EVERY_HOURS, pair_key]).fetchone()
    if meta is None:
        return "no plan yet"
    if meta[0]:
        return "the last plan was an on-demand one"
    if meta[1]:
        return f"the full re-diff (every {FULL_PLAN_EVERY_HOURS} h) is due"
    wm = store.get_watermark(con, f"applied:{pair_key}")
    if wm is None:
        return "never applied"
    failed = con.execute("""SELECT count(*) FROM provisioning_log WHERE pair_key = ? AND cycle_id = ?
                            AND (status = 'Failure' OR (status = 'Warning' AND error_code IS NOT NULL)
                                 OR hold = 'blocked')""", [pair_key, wm[1]]).fetchone()[0]
    if failed:
        return f"{failed} write(s) of the last cycle failed or are pending"
    timed = con.execute("SELECT count(*) FROM plan_exclusions WHERE pair_key = ? AND list_contains(?, check_name)",
                        [pair_key, list(TIME_BOUND_HOLDS)]).fetchone()[0]
    if timed:
        return f"{timed} user(s) held by a rolling-window cap, which time alone can lift"
    return ""


def _versions(con: duckdb.DuckDBPyConnection, topology: Any, pair_key: str) -> str:
    """Which staging of the source and which snapshot of the target the store holds now."""
    pair = topology.pair(pair_key)
    rows = con.execute("SELECT name, CAST(value AS VARCHAR), info FROM watermarks WHERE list_contains(?, name) ORDER BY 1",
                       [[f"stage:{pair.source}", f"snapshot:{pair.target}"]]).fetchall()
    return repr(rows)


def forget(db: str | Path | None, topology: Any, pair_key: str) -> None:
    """A pair run starts: its old fingerprint no longer describes the store (only a clean end records anew).

    Keeps which source staging and target snapshot this run reads, so `record` can tell whether an
    extraction replaced them while the run was planning (then the plan saw other inputs than the hash).
    """
    with store.connect(db) as con:
        con.execute("INSERT OR REPLACE INTO pair_inputs VALUES (?, ?, NULL, NULL, NULL, NULL)",
                    [pair_key, _versions(con, topology, pair_key)])


def record(db: str | Path | None, topology: Any, pair_key: str, run_id: str, cycle_id: str) -> str:
    """After a clean run: the fingerprint a later cycle compares with (returned; empty when not recorded)."""
    with store.connect(db) as con:
        started = con.execute("SELECT versions FROM pair_inputs WHERE pair_key = ?", [pair_key]).fetchone()
        if started is None or started[0] != _versions(con, topology, pair_key):
            con.execute("DELETE FROM pair_inputs WHERE pair_key = ?", [pair_key])
            return ""  # an extraction ran during this run: the next run records
        fp = fingerprint(con, topology, pair_key)
        con.execute("UPDATE pair_inputs SET fingerprint = ?, run_id = ?, cycle_id = ?, recorded_at = now() "
                    "WHERE pair_key = ?", [fp, run_id, cycle_id, pair_key])
    return fp


def decide(db: str | Path | None, topology: Any, pair_keys: list[str]) -> dict[str, Decision]:
    """For each pair: skip its run only when its fingerprint equals the last clean run's and nothing is pending."""
    out: dict[str, Decision] = {}
    with store.connect(db) as con:
        recorded = {r[0]: r[1:] for r in con.execute(
            """SELECT pair_key, fingerprint, run_id, cycle_id FROM pair_inputs
               WHERE list_contains(?, pair_key) AND fingerprint IS NOT NULL""",
            [list(pair_keys)]).fetchall()}
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
