"""The provisioning plan of one sync pair, computed in DuckDB SQL from desired state and target snapshot.

Matching follows Entra: first the link (directory extensions xtsSourceTenantId + xtsSourceObjectId on the
target user, or the link kept in DuckDB), then adoption of an unlinked external (B2B) user of the same
mail, and never an internal member of the target. Actions: create, update (each changed property
old -> new), disable (block sign-in), delete (soft), restore (within the retention window), skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from xts_pipeline import store
from xts_pipeline.guardrails.approvals import plan_fingerprint

ACTIONS = ("create", "update", "disable", "delete", "restore", "skip")
WRITE_ACTIONS = ("create", "update", "disable", "delete", "restore")
RETENTION_DAYS = 30
FULL_PLAN_EVERY_HOURS = 24  # a full re-diff against the target now and then, to catch drift and lost links

# An external (B2B) user of the target: invited, a guest, or an #EXT# UPN. Anything else is internal.
_EXTERNAL = ("(coalesce(t.creation_type, '') = 'Invitation' OR coalesce(t.user_type, '') = 'Guest' "
             "OR coalesce(t.user_principal_name, '') LIKE '%#EXT#%' OR t.external_user_state IS NOT NULL)")

# Graph returns [] for an empty collection and null for an empty string property: both mean "no value".
NORM_MACRO = """CREATE OR REPLACE TEMP MACRO norm(v) AS
  CASE WHEN v IS NULL OR CAST(v AS VARCHAR) IN ('null', '[]', '""') THEN 'null' ELSE CAST(v AS VARCHAR) END"""

PLAN_SQL = f"""
WITH
d_all AS (SELECT * FROM desired_users WHERE pair_key = $pair),
t AS (SELECT * FROM target_users WHERE tenant = $target),
ext AS (
  SELECT max(full_name) FILTER (WHERE short_name = 'xtsSourceTenantId') AS tid,
         max(full_name) FILTER (WHERE short_name = 'xtsSourceObjectId') AS oid,
         max(full_name) FILTER (WHERE short_name = 'xtsSyncConfig') AS cfg
  FROM target_extensions WHERE tenant = $target),
-- 1. the link: on the target user, else the link kept in DuckDB (target user still present). A `pending`
-- link (invitation landed, link PATCH not confirmed) matches too: link repair below writes the link to it.
link_on_target AS (
  SELECT t.link_source_object_id AS sid, t.id AS tid_, 'link' AS how FROM t
  WHERE t.link_source_tenant_id = $source_tid AND t.link_source_object_id IS NOT NULL
  QUALIFY row_number() OVER (PARTITION BY t.link_source_object_id ORDER BY t.id) = 1),
link_in_db AS (
  SELECT l.source_object_id AS sid, l.target_user_id AS tid_, 'link' AS how
  FROM links l JOIN t ON t.id = l.target_user_id
  WHERE l.pair_key = $pair AND l.state IN ('active', 'pending') AND t.link_source_object_id IS NULL
    AND l.source_object_id NOT IN (SELECT sid FROM link_on_target)),
linked AS (SELECT * FROM link_on_target UNION ALL SELECT * FROM link_in_db),
-- managers (Entra's referenceResolution). src_mgr: each source user's manager; applied_mgr: the manager this
-- pair last wrote for a user (links.applied.manager, recorded by apply on success).
src_mgr AS (
  SELECT id AS sid, json_extract_string(attrs, '$.manager.id') AS msid FROM staged_users WHERE tenant = $source),
applied_mgr AS (
  SELECT source_object_id AS sid, json_extract_string(applied, '$.manager') AS am FROM links WHERE pair_key = $pair),
-- a linked report whose synced source manager is linked too, but neither the manager this pair last wrote nor
-- the target's: re-planned every ordinary cycle until the reference holds (a manager linked later, a
-- failed, held or interrupted manager write), never left to the daily re-diff
mgr_unresolved AS (
  SELECT r.sid FROM linked r JOIN d_all dr ON dr.source_object_id = r.sid
    JOIN src_mgr s ON s.sid = r.sid JOIN linked m ON m.sid = s.msid
    JOIN d_all dm ON dm.source_object_id = s.msid
    LEFT JOIN applied_mgr a ON a.sid = r.sid LEFT JOIN t ON t.id = r.tid_
  WHERE m.tid_ IS DISTINCT FROM a.am AND m.tid_ IS DISTINCT FROM json_extract_string(t.attrs, '$.manager.id')),
-- the target snapshot's read time (set by the snapshot step), and users this pair wrote after it whose desired
-- state has not changed since: the snapshot cannot show those writes, so planning them again from it would
-- send every write twice (a plan on a snapshot taken before or during the previous apply)
snap AS (SELECT max(value) AS read_at FROM watermarks WHERE name = 'snapshot:' || $target),
written_since_snapshot AS (
  SELECT j.source_object_id AS sid FROM write_journal j
  JOIN d_all x ON x.source_object_id = j.source_object_id CROSS JOIN snap
  WHERE j.pair_key = $pair AND j.state = 'done' AND snap.read_at IS NOT NULL AND j.finished_at >= snap.read_at
  GROUP BY 1 HAVING max(x.computed_at) <= max(j.finished_at)),
-- incremental plans look at users whose desired state changed since the last applied plan, users not yet
-- linked on the target (pending creates and pending links), unresolved managers, and last applied cycle's
-- failures; unchanged users are left alone, as Entra does
d AS (SELECT *, lower(coalesce(mail, user_principal_name)) AS addr FROM d_all
      WHERE source_object_id NOT IN (SELECT sid FROM written_since_snapshot) AND ($full OR computed_at > CAST($since AS TIMESTAMP)
         OR source_object_id NOT IN (SELECT source_object_id FROM links WHERE pair_key = $pair AND state = 'active')
         OR source_object_id IN (SELECT sid FROM mgr_unresolved)
         OR source_object_id IN (SELECT source_object_id FROM provisioning_log WHERE pair_key = $pair
                                 AND cycle_id = $last_cycle AND source_object_id IS NOT NULL
                                 AND (status = 'Failure' OR reason LIKE 'blocked:%' OR reason LIKE 'held by%')))),
-- a link the store recorded after the target snapshot was read, whose user that snapshot could not see yet:
-- never provisioned again from a stale snapshot (that would invite a second account)
unseen_link AS (
  SELECT l.source_object_id AS sid, l.target_user_id AS tid_ FROM links l, snap
  WHERE l.pair_key = $pair AND l.state IN ('active', 'pending') AND snap.read_at IS NOT NULL
    AND l.linked_at >= snap.read_at AND l.target_user_id NOT IN (SELECT id FROM t)),
-- 2. a soft-deleted user of ours, still inside the retention window
restorable AS (
  SELECT l.source_object_id AS sid, l.target_user_id AS tid_, 'restore' AS how FROM links l
  WHERE l.pair_key = $pair AND l.state = 'deleted'
    AND l.deleted_at >= CAST($now AS TIMESTAMP) - INTERVAL {RETENTION_DAYS} DAY
    AND l.target_user_id NOT IN (SELECT id FROM t)
    AND l.source_object_id NOT IN (SELECT sid FROM linked)),
-- 3. adoption: an unlinked external user with the same mail; one target user per source user
adopt AS (
  SELECT d.source_object_id AS sid, t.id AS tid_, 'adopt' AS how
  FROM d JOIN t ON lower(t.mail) = d.addr
  WHERE {_EXTERNAL} AND t.link_source_object_id IS NULL
    AND d.source_object_id NOT IN (SELECT sid FROM linked)
    AND d.source_object_id NOT IN (SELECT sid FROM restorable)
    AND t.id NOT IN (SELECT tid_ FROM linked)
  QUALIFY row_number() OVER (PARTITION BY t.id ORDER BY d.source_object_id) = 1
      AND row_number() OVER (PARTITION BY d.source_object_id ORDER BY t.id) = 1),
matched AS (SELECT * FROM linked UNION ALL SELECT * FROM restorable UNION ALL SELECT * FROM adopt),
-- never an internal member: a source user whose mail belongs to one is skipped, not matched
internal_clash AS (
  SELECT DISTINCT d.source_object_id AS sid, first(t.id) OVER (PARTITION BY d.source_object_id) AS tid_
  FROM d JOIN t ON lower(t.mail) = d.addr OR lower(t.user_principal_name) = d.addr
  WHERE NOT {_EXTERNAL}),
link_patch AS (
  SELECT d.source_object_id AS sid,
         json_object(ext.tid, d.source_tenant_id, ext.oid, d.source_object_id, ext.cfg, $pair) AS patch
  FROM d, ext),
-- desired rows with their match
dm AS (
  SELECT d.*, m.tid_ AS target_user_id, coalesce(m.how, 'none') AS how, t.attrs AS target_attrs,
         t.account_enabled AS target_enabled, lp.patch AS link_patch,
         ic.tid_ AS clash_id,
         (m.tid_ IS NOT NULL AND (t.link_source_object_id IS NULL OR t.link_source_tenant_id IS NULL)) AS link_missing
  FROM d LEFT JOIN matched m ON m.sid = d.source_object_id
         LEFT JOIN t ON t.id = m.tid_
         LEFT JOIN link_patch lp ON lp.sid = d.source_object_id
         LEFT JOIN internal_clash ic ON ic.sid = d.source_object_id),
-- the would-be attributes: mapped attributes, plus link + provenance where they are missing. Link repair: a
-- matched user whose target object lacks them gets them written, whatever the store believes (a link is
-- active only when it is on the target)
want AS (
  SELECT *, CASE WHEN how IN ('link') AND NOT link_missing THEN desired_update
                 ELSE json_merge_patch(CASE WHEN how = 'none' THEN desired_create ELSE desired_update END,
                                       link_patch) END AS want
  FROM dm),
props AS (
  SELECT source_object_id, unnest(json_keys(want)) AS k, want, target_attrs FROM want),
-- manager (Entra's referenceResolution): the source manager's B2B user when that manager is in scope and
-- matched in this pair (linked, pending, restored or adopted in this same cycle). Written when it is neither
-- what this pair last wrote nor what the target has. A manager not synced, or removed in the source, leaves
-- the target's manager alone ("the manager attribute isn't updated in the target tenant"); a new source
-- manager who is synced replaces it. Managers created in this same cycle are resolved by apply after the
-- creates (apply.manager_refs).
mgr AS (
  SELECT w.source_object_id, json_extract_string(w.target_attrs, '$.manager.id') AS cur, lm.tid_ AS new_, s.msid,
         a.am
  FROM want w LEFT JOIN src_mgr s ON s.sid = w.source_object_id
              LEFT JOIN matched lm ON lm.sid = s.msid AND s.msid IN (SELECT source_object_id FROM d_all)
              LEFT JOIN applied_mgr a ON a.sid = w.source_object_id
  WHERE w.how IN ('link', 'adopt')),
all_diffs AS (
  SELECT source_object_id, k, json_extract(target_attrs, '$."' || k || '"') AS old,
         json_extract(want, '$."' || k || '"') AS new
  FROM props
  WHERE norm(json_extract(want, '$."' || k || '"')) IS DISTINCT FROM norm(json_extract(target_attrs, '$."' || k || '"'))
  UNION ALL
  SELECT source_object_id, 'manager', to_json(cur), to_json(new_) FROM mgr
  WHERE new_ IS NOT NULL AND new_ IS DISTINCT FROM cur AND new_ IS DISTINCT FROM am),
diffs AS (
  SELECT source_object_id, list({{'property': k, 'old': old, 'new': new}} ORDER BY k) AS changes
  FROM all_diffs GROUP BY source_object_id),
dup_create AS (
  SELECT source_object_id, row_number() OVER (PARTITION BY addr ORDER BY source_object_id) AS rn
  FROM want WHERE how = 'none'),
desired_plan AS (
  SELECT w.source_tenant_id, w.source_object_id, w.target_user_id, coalesce(w.mail, w.user_principal_name) AS mail,
    w.user_principal_name,
    CASE
      WHEN w.how = 'none' AND ul.sid IS NOT NULL THEN 'skip'
      WHEN w.how = 'none' AND w.clash_id IS NOT NULL THEN 'skip'
      WHEN w.how = 'none' AND dc.rn > 1 THEN 'skip'
      WHEN w.how = 'none' THEN (CASE WHEN $allow_create THEN 'create' ELSE 'skip' END)
      WHEN w.how = 'restore' THEN 'restore'
      WHEN NOT $allow_update THEN 'skip'
      WHEN w.account_enabled = false AND coalesce(w.target_enabled, true) THEN 'disable'
      WHEN df.changes IS NOT NULL THEN 'update'
      ELSE 'skip' END AS action,
    df.changes AS changes_list,
    w.want AS desired,
    CASE
      WHEN w.how = 'none' AND ul.sid IS NOT NULL THEN
        'linked to target user ' || ul.tid_ || ' after the target snapshot was read; provisioned again only '
        || 'if a fresh snapshot no longer has it'
      WHEN w.how = 'none' AND w.clash_id IS NOT NULL THEN
        'mail ' || w.addr || ' belongs to internal member ' || w.clash_id || ' of the target; internal members are never matched'
      WHEN w.how = 'none' AND dc.rn > 1 THEN 'another source user has the same mail ' || w.addr || '; only one is synced'
      WHEN w.how = 'none' AND NOT $allow_create THEN 'creates are turned off for this pair'
      WHEN w.how = 'none' THEN 'in scope, no matching user in the target'
      WHEN w.how = 'restore' THEN 'back in scope within ' || {RETENTION_DAYS} || ' days of its soft delete'
      WHEN NOT $allow_update THEN 'updates are turned off for this pair'
      WHEN w.how = 'adopt' THEN 'adopts existing B2B user with the same mail'
      WHEN w.account_enabled = false AND coalesce(w.target_enabled, true) THEN 'source account is disabled'
      WHEN w.how = 'link' AND w.link_missing AND df.changes IS NOT NULL THEN
        'link and provenance missing on the target user (an interrupted, held or failed write): written now'
      WHEN df.changes IS NOT NULL THEN 'source attributes changed'
      ELSE 'unchanged' END AS reason,
    w.how AS match
  FROM want w LEFT JOIN diffs df USING (source_object_id)
              LEFT JOIN dup_create dc USING (source_object_id)
              LEFT JOIN unseen_link ul ON ul.sid = w.source_object_id),
-- every target user this pair created or adopted: by the link extension on the target, by the store's links
-- (a pending one too: an invitation that landed without its link) and by the write journal
ours AS (
  SELECT t.link_source_object_id AS sid, t.id AS tid_, 0 AS pri FROM t
  WHERE t.link_source_tenant_id = $source_tid AND t.link_source_object_id IS NOT NULL
  UNION ALL
  SELECT l.source_object_id, l.target_user_id, 1 FROM links l JOIN t ON t.id = l.target_user_id
  WHERE l.pair_key = $pair AND l.state IN ('active', 'pending') AND t.link_source_object_id IS NULL
  UNION ALL
  SELECT j.source_object_id, j.target_user_id, 2 FROM write_journal j JOIN t ON t.id = j.target_user_id
  WHERE j.pair_key = $pair AND j.op_kind IN ('create', 'restore') AND j.source_object_id IS NOT NULL
    AND t.link_source_object_id IS NULL
    AND NOT EXISTS (SELECT 1 FROM links l2 WHERE l2.pair_key = $pair AND l2.source_object_id = j.source_object_id
                    AND (l2.state = 'deleted' OR l2.target_user_id <> j.target_user_id))
  UNION ALL
  -- an invitation a killed run left in flight (its answer, the user's id, was lost): the external, unlinked
  -- target user with the invited address
  SELECT j.source_object_id, t.id, 3 FROM write_journal j JOIN t ON lower(t.mail) = lower(j.mail)
  WHERE j.pair_key = $pair AND j.op_kind = 'create' AND j.state = 'in_flight' AND j.target_user_id IS NULL
    AND j.source_object_id IS NOT NULL AND t.link_source_object_id IS NULL AND {_EXTERNAL}
    AND j.source_object_id NOT IN (SELECT source_object_id FROM links WHERE pair_key = $pair)),
-- users of ours in the target that are no longer wanted: out of scope, deleted or disabled at source
gone AS (
  SELECT $source_tid AS source_tenant_id, o.sid AS source_object_id,
         t.id AS target_user_id, t.mail, t.user_principal_name, t.account_enabled,
         (o.sid IN (SELECT id FROM rejected_users WHERE tenant = $source)
          OR o.sid IN (SELECT source_object_id FROM desired_errors WHERE pair_key = $pair)) AS rejected
  FROM ours o JOIN t ON t.id = o.tid_
  WHERE o.sid NOT IN (SELECT source_object_id FROM d_all)
  QUALIFY row_number() OVER (PARTITION BY o.sid ORDER BY o.pri, t.id) = 1
      AND row_number() OVER (PARTITION BY t.id ORDER BY o.pri, o.sid) = 1),
gone_plan AS (
  SELECT source_tenant_id, source_object_id, target_user_id, mail, user_principal_name,
    CASE WHEN rejected THEN 'skip'
         WHEN $deprovision = 'delete' AND $allow_delete THEN 'delete'
         WHEN $deprovision = 'disable' AND $allow_update AND coalesce(account_enabled, true) THEN 'disable'
         ELSE 'skip' END AS action,
    CASE WHEN $deprovision = 'disable' AND NOT rejected AND coalesce(account_enabled, true)
         THEN [{{'property': 'accountEnabled', 'old': CAST('true' AS JSON), 'new': CAST('false' AS JSON)}}]
         END AS changes_list,
    CASE WHEN $deprovision = 'disable' THEN json_object('accountEnabled', false) END AS desired,
    CASE WHEN rejected THEN 'source user failed validation or mapping this cycle; left as is'
         WHEN $deprovision = 'none' THEN 'out of scope; deprovision action is none'
         WHEN $deprovision = 'delete' AND NOT $allow_delete THEN 'out of scope; deletes are turned off for this pair'
         ELSE 'out of scope or deleted in the source' END AS reason,
    'link' AS match
  FROM gone),
allrows AS (SELECT * FROM desired_plan UNION ALL SELECT * FROM gone_plan)
SELECT $pair AS pair_key, $cycle AS cycle_id,
       md5($cycle || ':' || coalesce(source_object_id, '') || ':' || coalesce(target_user_id, '')) AS change_id,
       source_tenant_id, source_object_id, target_user_id, action,
       CAST(to_json(coalesce(changes_list, [])) AS JSON) AS changes, CAST(desired AS JSON) AS desired,
       reason, match, mail, user_principal_name
FROM allrows
"""  # noqa: S608 - only module constants are interpolated; values are bound


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
    }
    with store.connect(db) as con:
        con.execute("BEGIN")
        # Links the target carries are links we know (a rebuilt DuckDB file relearns them here).
        con.execute(
            """INSERT INTO links (pair_key, source_tenant_id, source_object_id, target_tenant, target_user_id, state,
                                  linked_at, deleted_at)
               SELECT $pair, link_source_tenant_id, link_source_object_id, $target, id, 'active',
                      now(), NULL FROM target_users
               WHERE tenant = $target AND link_source_tenant_id = $source_tid AND link_source_object_id IS NOT NULL
               QUALIFY row_number() OVER (PARTITION BY link_source_object_id ORDER BY id) = 1
               ON CONFLICT (pair_key, source_object_id) DO UPDATE SET target_user_id = excluded.target_user_id,
               state = 'active', deleted_at = NULL""",
            {"pair": pair.key, "target": pair.target, "source_tid": pair.source_tenant_id})
        # A link is active only while it is on the target: one the snapshot shows missing (read after the link
        # was recorded) is pending again, so this plan writes it back (link repair).
        con.execute(
            """UPDATE links SET state = 'pending' WHERE pair_key = $pair AND state = 'active'
               AND target_user_id IN (SELECT id FROM target_users WHERE tenant = $target
                                      AND link_source_object_id IS NULL)
               AND linked_at < coalesce((SELECT max(value) FROM watermarks WHERE name = 'snapshot:' || $target),
                                        CAST('infinity' AS TIMESTAMP))""",
            {"pair": pair.key, "target": pair.target})
        wm = store.get_watermark(con, f"plan:{pair.key}")
        last_full = con.execute("SELECT full_at FROM plan_meta WHERE pair_key = ?", [pair.key]).fetchone()
        full = (not incremental or only_user is not None or wm is None or not last_full or last_full[0] is None
                or con.execute("SELECT CAST(? AS TIMESTAMP) - ? > INTERVAL (?) HOUR",
                               [params["now"], last_full[0], FULL_PLAN_EVERY_HOURS]).fetchone()[0])
        params.update(full=bool(full), since=None if full else wm[0], last_cycle=None if full else wm[1])
        con.execute("DELETE FROM plan WHERE pair_key = ?", [pair.key])
        con.execute("DELETE FROM plan_exclusions WHERE pair_key = ?", [pair.key])
        con.execute(NORM_MACRO)
        con.execute(f"INSERT INTO plan {PLAN_SQL}", params)  # noqa: S608 - constant SQL, values bound
        if only_user:
            con.execute("""DELETE FROM plan WHERE pair_key = ? AND NOT (coalesce(source_object_id, '') = ?
                           OR lower(coalesce(user_principal_name, '')) = lower(?)
                           OR lower(coalesce(mail, '')) = lower(?))""", [pair.key, only_user, only_user, only_user])
        counts = store.count_by(con, "plan", "action", "pair_key = ?", [pair.key])
        fingerprint = plan_fingerprint(_content_rows(con, pair.key))
        pol = con.execute("SELECT is_sync_allowed FROM target_policy WHERE tenant = ? AND source_tenant = ?",
                          [pair.target, pair.source]).fetchone()
        allowed = pol[0] if pol else None
        blocked = None
        if not allowed:
            why = "no cross-tenant access partner setting for the source" if pol is None or allowed is None \
                else "userSyncInbound.isSyncAllowed is false"
            blocked = (f"target {pair.target} does not allow sync from {pair.source} ({why}); this pair writes "
                       f"nothing. The target's admin must set isSyncAllowed=true in its partner settings.")
        con.execute(
            """INSERT INTO plan_meta VALUES (?, ?, ?, ?, ?, now(), ?, CASE WHEN ? THEN now() END, ?)
               ON CONFLICT (pair_key) DO UPDATE SET
               cycle_id = excluded.cycle_id, fingerprint = excluded.fingerprint,
               sync_allowed = excluded.sync_allowed, blocked_reason = excluded.blocked_reason,
               planned_at = excluded.planned_at, full_plan = excluded.full_plan,
               full_at = coalesce(excluded.full_at, plan_meta.full_at), only_user = excluded.only_user""",
            [pair.key, cycle_id, fingerprint, allowed, blocked, bool(full), bool(full and not only_user), only_user])
        con.execute("COMMIT")
    return PlanSummary(pair.key, cycle_id, {a: counts.get(a, 0) for a in ACTIONS}, fingerprint, allowed, blocked,
                       full=bool(full))


FINGERPRINT_COLUMNS = ("pair_key", "action", "source_tenant_id", "source_object_id", "target_user_id",
                       "changes", "desired")


def _content_rows(con, pair_key: str, batch: int = 10_000) -> Iterator[dict]:
    """The plan's writing rows as plan_fingerprint reads them, streamed in batches (a plan can be 100k rows)."""
    cur = con.execute(
        """SELECT pair_key, action, source_tenant_id, source_object_id, target_user_id,
                  CAST(changes AS VARCHAR), CAST(desired AS VARCHAR)
           FROM plan WHERE pair_key = ? AND action <> 'skip'""", [pair_key])
    while rows := cur.fetchmany(batch):
        for r in rows:
            yield dict(zip(FINGERPRINT_COLUMNS, r, strict=True))


def _utcnow() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")


CONSISTENCY_SQL = f"""
WITH p AS (SELECT * FROM plan WHERE pair_key = $pair AND action <> 'skip'),
t AS (SELECT * FROM target_users WHERE tenant = $target)
SELECT 'two writes on one target user' AS problem, target_user_id AS subject FROM p
  WHERE target_user_id IS NOT NULL GROUP BY target_user_id HAVING count(*) > 1
UNION ALL
SELECT 'two rows for one source user', source_object_id FROM plan WHERE pair_key = $pair
  AND source_object_id IS NOT NULL GROUP BY source_object_id HAVING count(*) > 1
UNION ALL
SELECT 'two creates with one mail', lower(mail) FROM p WHERE action = 'create' GROUP BY lower(mail) HAVING count(*) > 1
UNION ALL
SELECT 'create without an address', source_object_id FROM p WHERE action = 'create' AND mail IS NULL
UNION ALL
SELECT action || ' without a target user', source_object_id FROM p WHERE action <> 'create' AND target_user_id IS NULL
UNION ALL
SELECT 'write on an internal member of the target', p.target_user_id FROM p JOIN t ON t.id = p.target_user_id
  WHERE NOT {_EXTERNAL}
UNION ALL
SELECT 'delete of a user this pair does not own', p.target_user_id FROM p LEFT JOIN t ON t.id = p.target_user_id
  WHERE p.action = 'delete' AND coalesce(t.link_source_tenant_id, '') <> $source_tid
    AND p.target_user_id NOT IN (SELECT target_user_id FROM links WHERE pair_key = $pair)
    AND p.target_user_id NOT IN (SELECT target_user_id FROM write_journal WHERE pair_key = $pair
                                 AND op_kind IN ('create', 'restore') AND target_user_id IS NOT NULL)
    AND p.target_user_id NOT IN (SELECT t2.id FROM write_journal j JOIN t t2 ON lower(t2.mail) = lower(j.mail)
                                 WHERE j.pair_key = $pair AND j.op_kind = 'create' AND j.state = 'in_flight')
"""  # noqa: S608 - only module constants are interpolated


def consistency_problems(db: str | Path | None, pair: PairSpec, limit: int = 50) -> list[tuple[str, str]]:
    """Invariants every plan must meet before a write (the base blocking check; apply re-checks them)."""
    with store.connect(db) as con:
        rows = con.execute(CONSISTENCY_SQL + f" LIMIT {int(limit)}",
                           {"pair": pair.key, "target": pair.target, "source_tid": pair.source_tenant_id}).fetchall()
    return [(r[0], r[1]) for r in rows]


def mark_applied(con, pair_key: str) -> None:
    """After an apply that was allowed to write: the next incremental plan starts from this plan."""
    row = con.execute("SELECT planned_at, cycle_id, only_user FROM plan_meta WHERE pair_key = ?",
                      [pair_key]).fetchone()
    if row and row[2] is None:  # an on-demand plan of one user says nothing about the others
        store.set_watermark(con, f"plan:{pair_key}", row[0], row[1])
