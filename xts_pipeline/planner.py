"""The provisioning plan of one sync pair, computed in DuckDB SQL from desired state and target snapshot.

Matching: first the link (directory extensions xtsSourceTenantId + xtsSourceObjectId on the target user,
or the link kept in DuckDB), then adoption of an existing external user under the identity-binding rules
(see the `adopt_verdict` CTE), never an internal member of the target. The diff is three-way: a linked
user's property is written only when its mapped source value differs from what this pair last wrote
(links.applied), so target-side edits persist until the source changes. Actions: create, adopt, update
(each changed property old -> new), disable (accountEnabled only), delete (soft), restore, skip.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from xts_pipeline import journal, plan_meta, queries, store
from xts_pipeline.external import external_sql
from xts_pipeline.fingerprint import canonical, combined
from xts_pipeline.guardrails import verdicts
from xts_pipeline.mappings import FILL_KEY
from xts_pipeline.vocabulary import ACTIONS, WRITE_ACTIONS

RETENTION_DAYS = 30
# A full re-diff now and then looks at every user again (lost links, missed changes, drift to report). It
# follows the three-way rule like any plan: it never rewrites a property only because the target changed.
FULL_PLAN_EVERY_HOURS = 24

# An external (B2B) user of the target: invited, a guest, or an #EXT# UPN. Anything else is internal.
_EXTERNAL = external_sql("t")


def _invited_address(alias: str) -> str:
    """SQL for the address an external user was invited with, from its #EXT# UPN (local_domain#EXT#@...)."""
    if not alias.isidentifier():
        raise ValueError(f"_invited_address: {alias!r} is not a SQL alias")
    upn, pattern = f"{alias}.user_principal_name", "'^(.+)_([^_#@]+)#EXT#@'"
    return (f"CASE WHEN regexp_matches({upn}, {pattern}, 'i') THEN lower(regexp_extract({upn}, {pattern}, 1, 'i')) "
            f"|| '@' || lower(regexp_extract({upn}, {pattern}, 2, 'i')) END")


NORM_MACRO = queries.load("planner/norm_macro")  # Graph's [] and null both mean "no value"

PLAN_CTES = queries.render("planner/plan_ctes", external_t=_EXTERNAL, fill_key=FILL_KEY,
                           invited_address_a=_invited_address("a"), invited_address_t=_invited_address("t"))

PLAN_SELECT = queries.load("planner/plan_select")
PLAN_SQL = PLAN_CTES + PLAN_SELECT

# Drift of the users this plan looked at: what the target holds now vs what this pair last wrote.
DRIFT_SELECT = queries.load("planner/drift_select")
DRIFT_SQL = PLAN_CTES + DRIFT_SELECT
INSERT_PLAN_SQL = queries.render("planner/insert_plan", query=PLAN_SQL)
INSERT_DRIFT_SQL = queries.render("planner/insert_drift", query=DRIFT_SQL)

_CTE_START = re.compile(r"^(\w+) AS (?:(?:NOT )?MATERIALIZED )?\(", re.M)


_WITH = re.compile(r"^WITH\n", re.MULTILINE)  # where the CTE list of plan_ctes.sql begins


def _split_ctes(text: str) -> list[tuple[str, str]]:
    """PLAN_CTES as (name, `name AS (...)`) in order, without the comments between them."""
    body = _WITH.split(text, maxsplit=1)[1]
    starts = list(_CTE_START.finditer(body))
    out = []
    for i, m in enumerate(starts):
        lines = body[m.start():starts[i + 1].start() if i + 1 < len(starts) else len(body)].rstrip().splitlines()
        while lines[-1].lstrip().startswith("--"):
            lines.pop()
        chunk = "\n".join(lines).rstrip().removesuffix(",")
        if not chunk.endswith(")"):
            raise AssertionError(f"plan CTE {m.group(1)} does not end with ')'")
        out.append((m.group(1), chunk))
    return out


_PLAN_CTE_LIST = _split_ctes(PLAN_CTES)


# What a big pair's plan and drift both read, each computed once into a temp table, in this order: the
# 100,000-row passes (links, managers read from JSON, the candidate users of an incremental plan, the
# address regexes of adoption) run once a plan, not once for each statement that reads them.
SHARED_CTES = ("linked", "src_mgr", "applied_mgr", "d", "adopt_verdict", "matched", "want", "cmp")


def _bound(sql: str, params: Mapping[str, object]) -> dict[str, object]:
    """The parameters `sql` names: DuckDB refuses a named parameter a statement does not use."""
    used = set(re.findall(r"\$(\w+)", sql))
    return {k: v for k, v in params.items() if k in used}


_CTE_NAMES = tuple(name for name, _ in _PLAN_CTE_LIST)
_CTE_REFS = {name: {other for other in _CTE_NAMES if other != name and re.search(rf"\b{other}\b", text)}
             for name, text in _PLAN_CTE_LIST}


def _needed(select: str, done: Mapping[str, str]) -> set[str]:
    """The CTEs `select` reads, directly or through others (a temp table reads none): a word match, so a name
    in a comment only adds one. Every CTE a statement is given costs planning time, used or not (up to
    20 ms a statement on the bench)."""
    need: set[str] = set()
    todo = [name for name in _CTE_NAMES if re.search(rf"\b{name}\b", select)]
    while todo:
        name = todo.pop()
        if name not in need:
            need.add(name)
            todo.extend(() if name in done else _CTE_REFS[name] - need)
    return need


def plan_ctes(materialised: Mapping[str, str] | None = None, select: str | None = None) -> str:
    """PLAN_CTES with some CTEs read from temp tables computed once: the plan and its drift share them.

    A temp table is read in place (NOT MATERIALIZED), not copied again by each statement that reads it.
    With `select`, only the CTEs it needs are kept.
    """
    done = materialised or {}
    keep = set(_CTE_NAMES) if select is None else _needed(select, done)
    return queries.render("planner/with_ctes", ctes=",\n".join(
        f"{name} AS NOT MATERIALIZED (SELECT * FROM {done[name]})" if name in done else text  # noqa: S608
        for name, text in _PLAN_CTE_LIST if name in keep))




@dataclass
class PairSpec:
    """What the planner needs to know about a sync pair (a plain mirror of config's SyncPair)."""

    key: str
    source: str
    target: str
    source_tenant_id: str
    deprovision_action: str = "delete"  # delete | disable | none
    allow_create: bool = True
    allow_update: bool = True
    allow_delete: bool = True
    drift: str = "report"  # report | repair: what to do when the target no longer holds what we wrote
    protected: tuple[str, ...] = ()  # the target policy's protected display names, UPNs and mails


@dataclass
class PlanSummary:
    """Counts of one pair's plan, its fingerprint (the one `xts approve` takes) and whether the target lets it write."""

    pair_key: str
    cycle_id: str
    counts: dict[str, int] = field(default_factory=dict)
    fingerprint: str = ""
    sync_allowed: bool | None = None
    blocked_reason: str | None = None
    full: bool = True
    drift: int = 0  # properties of linked users whose target value differs from what this pair last wrote

    @property
    def writes(self) -> int:
        return sum(self.counts.get(a, 0) for a in WRITE_ACTIONS)


def plan_pair(db: str | Path | None, pair: PairSpec, cycle_id: str, now: str | None = None,
              only_user: str | None = None, incremental: bool = True) -> PlanSummary:
    """Replace `pair`'s rows in `plan` with a fresh plan for `cycle_id`, and record `plan_meta`.

    `only_user` (object id, UPN or mail of a source user) keeps that user's row only: on-demand
    provisioning of one user through the same steps. Incremental unless asked otherwise, the first time,
    or every FULL_PLAN_EVERY_HOURS: see the `d` CTE.
    """
    params = {
        "pair": pair.key, "target": pair.target, "source": pair.source, "source_tid": pair.source_tenant_id,
        "cycle": cycle_id, "deprovision": pair.deprovision_action, "allow_create": pair.allow_create,
        "allow_update": pair.allow_update, "allow_delete": pair.allow_delete, "now": now or _utcnow(),
        "drift_repair": pair.drift == "repair", "protected": sorted({p.strip().lower() for p in pair.protected}),
        "retention_days": RETENTION_DAYS,
    }
    with store.connect(db) as con:
        con.execute("BEGIN")
        journal.reconcile_links(con, pair.key, pair.target, pair.source_tenant_id)  # relearn, repair
        wm = store.get_watermark(con, f"plan:{pair.key}")
        meta = plan_meta.read(con, pair.key)
        last_full = meta.full_at if meta else None
        full = (not incremental or only_user is not None or wm is None or last_full is None
                or con.execute(queries.load("planner/full_due"),
                               [params["now"], last_full, FULL_PLAN_EVERY_HOURS]).fetchone()[0])
        params.update(full=bool(full), since=None if full else wm[0], last_cycle=None if full else wm[1])
        # Big pairs take the fast paths (sampled keys, comparison in temp tables); a small pair's plan is planning
        # time, which more and bigger statements would only add to.
        big = store.count(con, "desired_users", "pair_key", pair.key) >= FAST_PATHS_FROM
        params.update(plan_keys(con, pair) if big else {"keys": [], "paths": []})
        con.execute(queries.load("planner/clear_plan"), [pair.key])
        verdicts.clear(con, pair.key)  # a new plan: the old plan's guardrail verdicts and holds no longer apply
        con.execute(NORM_MACRO)
        journal.seed_applied(con, pair.key, pair.target)
        con.execute(queries.load("planner/clear_drift"), [pair.key])
        drift = con.execute(queries.load("planner/anything_applied"),
                            [pair.key]).fetchone()[0]  # nothing was ever applied (a first cycle): no drift to look for
        if drift and big:
            # The plan and its drift read the same per-property comparison (of every user on a full re-diff):
            # computed once, in temp tables, instead of once per statement.
            done: dict[str, str] = {}
            for name in SHARED_CTES:
                select = queries.render("planner/read_cte", cte=name)
                stmt = queries.render("planner/shared_table", table=f"plan_{name}",
                                      query=f"{plan_ctes(done, select)} {select}")
                con.execute(stmt, _bound(stmt, params))
                done[name] = f"plan_{name}"
            for stmt in (queries.render("planner/insert_plan", query=f"{plan_ctes(done, PLAN_SELECT)} {PLAN_SELECT}"),
                         queries.render("planner/insert_drift",
                                        query=f"{plan_ctes(done, DRIFT_SELECT)} {DRIFT_SELECT}")):
                con.execute(stmt, _bound(stmt, params))
            for table in done.values():
                con.execute(queries.render("planner/drop_table", table=table))
        else:
            con.execute(INSERT_PLAN_SQL, params)
            if drift:
                con.execute(INSERT_DRIFT_SQL, params)
        if only_user:
            one = {"pair": pair.key, "user": only_user}
            con.execute(queries.load("planner/keep_only_user"), one)
            con.execute(queries.load("planner/drift_of_kept_rows"), {"pair": pair.key})
        drift = store.count(con, "plan_drift", "pair_key", pair.key)
        counts = store.count_by(con, "plan", "action", "pair_key = ?", [pair.key])
        fingerprint = stored_plan_fingerprint(con, pair.key)
        pol = con.execute(queries.load("planner/sync_allowed"), {"target": pair.target, "source": pair.source}).fetchone()
        allowed = pol[0] if pol else None
        blocked = None
        if not allowed:
            why = "no cross-tenant access partner setting for the source" if pol is None or allowed is None \
                else "userSyncInbound.isSyncAllowed is false"
            blocked = (f"target {pair.target} does not allow sync from {pair.source} ({why}); this pair writes "
                       f"nothing. The target's admin must set isSyncAllowed=true in its partner settings.")
        con.execute(queries.load("planner/record_meta"), {
            "pair_key": pair.key, "cycle_id": cycle_id, "fingerprint": fingerprint, "sync_allowed": allowed,
            "blocked_reason": blocked, "full_plan": bool(full), "full": bool(full and not only_user),
            "only_user": only_user, "drift": drift})
        con.execute("COMMIT")
    return PlanSummary(pair.key, cycle_id, {a: counts.get(a, 0) for a in ACTIONS}, fingerprint, allowed, blocked,
                       full=bool(full), drift=int(drift))


# From this many desired users a pair's plan takes the fast paths (see plan_pair).
FAST_PATHS_FROM = 5000
# A sample is enough: $keys only chooses the fast path, a key outside it is compared the slow way (see `cmp`).
KEYS_SAMPLE = 5000
KEYS_SQL = queries.load("planner/keys")


def plan_keys(con, pair: PairSpec) -> dict[str, list[str]]:
    """The properties desired rows of `pair` write ($keys, from a sample) and their JSON paths ($paths).

    Bound as constants so each JSON document is parsed once per user for these, not once per property.
    """
    keys = con.execute(KEYS_SQL, {"pair": pair.key, "target": pair.target,
                                  "keys_sample": KEYS_SAMPLE}).fetchone()[0] or []
    return {"keys": keys, "paths": [f'$."{k}"' for k in keys]}


def stored_plan_fingerprint(con, pair_key: str, batch: int = 10_000) -> str:
    """plan_fingerprint of the pair's stored plan, the same hex digest, straight from the columns.

    The first load's plan is 100k creates: building a row dict each and reading it through the generic row
    readers cost seconds. The rows stream in batches in fingerprint.COLUMNS' order, each hashed through
    fingerprint.canonical, the encoding plan_fingerprint uses too.
    """
    cur = con.execute(queries.load("planner/writing_rows"), {"pair": pair_key})
    sha = hashlib.sha256
    digests: list[bytes] = []
    while rows := cur.fetchmany(batch):
        digests.extend(sha(canonical(r)).digest() for r in rows)
    return combined(digests)


def _utcnow() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")


CONSISTENCY_SQL = queries.render("planner/consistency", external_t=_EXTERNAL)


def consistency_problems(db: str | Path | None, pair: PairSpec, limit: int = 50) -> list[tuple[str, str]]:
    """Invariants every plan must meet before a write (the base blocking check; apply re-checks them)."""
    with store.connect(db) as con:
        rows = con.execute(CONSISTENCY_SQL, {"pair": pair.key, "target": pair.target,
                                             "source_tid": pair.source_tenant_id, "limit": int(limit)}).fetchall()
    return [(r[0], r[1]) for r in rows]


def mark_applied(con, pair_key: str) -> None:
    """After an apply that was allowed to write: the next incremental plan starts from this plan."""
    meta = plan_meta.read(con, pair_key)
    if meta and meta.only_user is None:  # an on-demand plan of one user says nothing about the others
        store.set_watermark(con, f"plan:{pair_key}", meta.planned_at, meta.cycle_id)
