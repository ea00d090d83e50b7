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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import orjson

from xts_pipeline import store
from xts_pipeline.external import external_sql
from xts_pipeline.guardrails import verdicts
from xts_pipeline.guardrails.approvals import FINGERPRINT_CHARS
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


# Graph returns [] for an empty collection and null for an empty string property: both mean "no value".
NORM_MACRO = """CREATE OR REPLACE TEMP MACRO norm(v) AS
  CASE WHEN v IS NULL OR CAST(v AS VARCHAR) IN ('null', '[]', '""') THEN 'null' ELSE CAST(v AS VARCHAR) END"""

PLAN_CTES = f"""
WITH
-- d_all and t are scanned where they are read (only the columns each reader needs): DuckDB would otherwise
-- copy every column of every row, JSON documents included, once per statement
d_all AS NOT MATERIALIZED (SELECT * FROM desired_users WHERE pair_key = $pair),
t AS NOT MATERIALIZED (SELECT * FROM target_users WHERE tenant = $target),
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
-- an invitation a killed run left in flight (its answer was lost): the external, unlinked target user with the
-- invited address is ours, a pending link (completed below by link repair), not someone to adopt
link_in_journal AS (
  SELECT j.source_object_id AS sid, t.id AS tid_, 'link' AS how
  FROM write_journal j JOIN t ON lower(t.mail) = lower(j.mail)
  WHERE j.pair_key = $pair AND j.op_kind = 'create' AND j.state = 'in_flight' AND j.source_object_id IS NOT NULL
    AND t.link_source_object_id IS NULL AND {_EXTERNAL}
    AND j.source_object_id NOT IN (SELECT sid FROM link_on_target)
    AND j.source_object_id NOT IN (SELECT sid FROM link_in_db)
    AND t.id NOT IN (SELECT tid_ FROM link_in_db)
  QUALIFY row_number() OVER (PARTITION BY j.source_object_id ORDER BY t.id) = 1
      AND row_number() OVER (PARTITION BY t.id ORDER BY j.source_object_id) = 1),
linked AS (SELECT * FROM link_on_target UNION ALL SELECT * FROM link_in_db UNION ALL SELECT * FROM link_in_journal),
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
-- linked on the target (pending creates and pending links), linked users whose target account disappeared
-- (provisioned again in the next cycle, as Entra does), unresolved managers, and last applied cycle's
-- failures; unchanged users are left alone
d AS (SELECT *, lower(coalesce(mail, user_principal_name)) AS addr FROM d_all
      WHERE source_object_id NOT IN (SELECT sid FROM written_since_snapshot) AND ($full OR computed_at > CAST($since AS TIMESTAMP)
         OR source_object_id NOT IN (SELECT source_object_id FROM links WHERE pair_key = $pair AND state = 'active')
         OR source_object_id IN (SELECT l.source_object_id FROM links l WHERE l.pair_key = $pair
                                 AND l.state = 'active' AND l.target_user_id NOT IN
                                     (SELECT id FROM target_users WHERE tenant = $target))
         OR source_object_id IN (SELECT sid FROM mgr_unresolved)
         OR source_object_id IN (SELECT source_object_id FROM provisioning_log WHERE pair_key = $pair
                                 AND cycle_id = $last_cycle AND source_object_id IS NOT NULL
                                 AND (status = 'Failure' OR hold IS NOT NULL)))),
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
-- 3. adoption (the identity binding): an existing target user with the source user's address is adopted
-- only when it is external, carries no link, is known to no pair, is not protected, every address it
-- shows is in a verified domain of the source tenant, and it has not redeemed through another identity
-- provider. Otherwise the source user is skipped with the first reason and the target user is untouched.
src_domains AS (SELECT lower(domain) AS domain FROM tenant_domains WHERE tenant = $source),
-- the cheap keys of every target user for the candidate joins; the invited address itself (three regexes) is
-- computed only for the target users a key pairs with a desired user
t_keys AS (
  SELECT t.id, t.user_principal_name, lower(t.mail) AS mail_l, {_EXTERNAL} AS external,
         -- before the first #EXT#@ of the UPN: for a UPN with one #EXT#@, the invited address with its last @
         -- written as _ (local_domain#EXT#@...); a UPN with two or more is compared in full
         split_part(lower(t.user_principal_name), '#ext#@', 1) AS ext_key,
         lower(t.user_principal_name) LIKE '%#ext#@%#ext#@%' AS ext_many
  FROM t),
candidate_keys AS (  -- equi-joins, not one OR join (which DuckDB can only run as a nested loop)
  SELECT d.source_object_id AS sid, d.addr, a.id AS tid_ FROM d JOIN t_keys a ON a.mail_l = d.addr WHERE a.external
  UNION
  SELECT d.source_object_id, d.addr, a.id FROM d JOIN t_keys a ON a.ext_key = regexp_replace(d.addr, '@([^@]*)$', '_\\1')
  WHERE a.external AND coalesce({_invited_address("a")} = d.addr, false)
  UNION
  SELECT d.source_object_id, d.addr, a.id FROM d JOIN t_keys a ON {_invited_address("a")} = d.addr
  WHERE a.external AND a.ext_many),
candidates AS (
  SELECT k.sid, k.addr, t.*, lower(t.mail) AS mail_l, {_invited_address("t")} AS ext_addr, {_EXTERNAL} AS external
  FROM candidate_keys k JOIN t ON t.id = k.tid_
  WHERE k.sid NOT IN (SELECT sid FROM linked)
    AND k.sid NOT IN (SELECT sid FROM restorable)),
foreign_links AS (  -- target users another source user or pair is bound to, by the store (not this one's own)
  SELECT c.sid, c.id AS tid_, min(l.pair_key || ' (source user ' || l.source_object_id || ')') AS owner
  FROM candidates c JOIN links l ON l.target_user_id = c.id AND l.target_tenant = $target
  WHERE coalesce(l.state, '') <> 'deleted' AND NOT (l.pair_key = $pair AND l.source_object_id = c.sid)
  GROUP BY 1, 2),
role_holders AS (
  SELECT member_id AS tid_, min(role_name) AS what FROM target_role_members WHERE tenant = $target GROUP BY 1),
role_group_members AS (
  SELECT m.member_id AS tid_, min(g.display_name) AS what FROM target_group_members m
  JOIN target_groups g ON g.tenant = m.tenant AND g.id = m.group_id
  WHERE m.tenant = $target AND g.is_assignable_to_role GROUP BY 1),
idps AS (  -- identity providers other than Entra (ExternalAzureAD) and the target's own UPN identity
  SELECT c.id AS tid_, string_agg(DISTINCT coalesce(json_extract_string(i.v, '$.issuer'), '?'), ', ') AS issuers
  FROM candidates c, unnest(CAST(json_extract(c.attrs, '$.identities') AS JSON[])) AS i(v)
  WHERE json_type(json_extract(c.attrs, '$.identities')) = 'ARRAY'
    AND coalesce(json_extract_string(i.v, '$.signInType'), '') <> 'userPrincipalName'
    AND NOT (coalesce(json_extract_string(i.v, '$.signInType'), '') = 'federated'
             AND coalesce(json_extract_string(i.v, '$.issuer'), '') = 'ExternalAzureAD')
  GROUP BY 1),
adopt_verdict AS (
  SELECT c.sid, c.id AS tid_,
    CASE
      WHEN c.link_source_tenant_id IS NOT NULL OR c.link_source_object_id IS NOT NULL OR c.link_sync_config IS NOT NULL
        THEN 'is synced by ' || coalesce('pair ' || c.link_sync_config, 'another pair') || ' from source tenant '
             || coalesce(c.link_source_tenant_id, '?') || ' (source user ' || coalesce(c.link_source_object_id, '?')
             || '); a user owned by another source or pair is never re-targeted'
      WHEN fl.owner IS NOT NULL
        THEN 'is bound to ' || fl.owner || ' in the store; a user owned by another source or pair is never re-targeted'
      WHEN rh.what IS NOT NULL THEN 'holds directory role ' || rh.what || '; protected users are never adopted'
      WHEN rg.what IS NOT NULL
        THEN 'is a member of role-assignable group ' || rg.what || '; protected users are never adopted'
      WHEN list_contains($protected, lower(coalesce(c.display_name, '')))
        OR list_contains($protected, lower(coalesce(c.user_principal_name, '')))
        OR list_contains($protected, lower(coalesce(c.mail, '')))
        THEN 'is listed as protected in the target''s impersonation policy; protected users are never adopted'
      WHEN (SELECT count(*) FROM src_domains) = 0
        THEN 'cannot be checked: the verified domains of the source tenant were never read; no domain is trusted'
      WHEN c.mail_l IS NOT NULL AND split_part(c.mail_l, '@', 2) NOT IN (SELECT domain FROM src_domains)
        THEN 'has mail ' || c.mail_l || ', not in a verified domain of the source tenant'
      WHEN c.ext_addr IS NOT NULL AND split_part(c.ext_addr, '@', 2) NOT IN (SELECT domain FROM src_domains)
        THEN 'was invited as ' || c.ext_addr || ', not in a verified domain of the source tenant'
      WHEN c.mail_l IS NULL AND c.ext_addr IS NULL THEN 'shows no address in a verified domain of the source tenant'
      WHEN ip.issuers IS NOT NULL THEN 'redeemed through another identity provider (' || ip.issuers || ')'
      WHEN json_extract(c.attrs, '$.identities') IS NULL AND coalesce(c.external_user_state, '') = 'Accepted'
        THEN 'redeemed its invitation, but its identities were not read, so the identity provider is unknown'
      END AS refusal
  FROM candidates c LEFT JOIN foreign_links fl ON fl.tid_ = c.id AND fl.sid = c.sid
       LEFT JOIN role_holders rh ON rh.tid_ = c.id LEFT JOIN role_group_members rg ON rg.tid_ = c.id
       LEFT JOIN idps ip ON ip.tid_ = c.id),
adopt AS (
  SELECT sid, tid_, 'adopt' AS how FROM adopt_verdict WHERE refusal IS NULL
  QUALIFY row_number() OVER (PARTITION BY tid_ ORDER BY sid) = 1
      AND row_number() OVER (PARTITION BY sid ORDER BY tid_) = 1),
adopt_refused AS (
  SELECT sid, first(tid_ ORDER BY tid_) AS tid_, first(refusal ORDER BY tid_) AS refusal FROM adopt_verdict
  WHERE refusal IS NOT NULL AND sid NOT IN (SELECT sid FROM adopt) GROUP BY sid),
matched AS (SELECT * FROM linked UNION ALL SELECT * FROM restorable UNION ALL SELECT * FROM adopt),
-- never an internal member: a source user whose mail belongs to one is skipped, not matched
internal_clash AS (
  SELECT sid, min(tid_) AS tid_ FROM (
    SELECT d.source_object_id AS sid, t.id AS tid_ FROM d JOIN t ON lower(t.mail) = d.addr WHERE NOT {_EXTERNAL}
    UNION ALL
    SELECT d.source_object_id, t.id FROM d JOIN t ON lower(t.user_principal_name) = d.addr WHERE NOT {_EXTERNAL})
  GROUP BY sid),
link_patch AS (
  SELECT d.source_object_id AS sid,
         json_object(ext.tid, d.source_tenant_id, ext.oid, d.source_object_id, ext.cfg, $pair) AS patch
  FROM d, ext),
-- desired rows with their match, and what this pair last wrote to the matched user (links.applied)
dm AS (
  SELECT d.* REPLACE (json_merge_patch(d.desired_update, '{{"{FILL_KEY}": null}}') AS desired_update),
         json_extract(d.desired_update, '$."{FILL_KEY}"') AS fill, m.tid_ AS target_user_id, coalesce(m.how, 'none') AS how, t.attrs AS target_attrs,
         t.account_enabled AS target_enabled, lp.patch AS link_patch,
         ic.tid_ AS clash_id, ar.tid_ AS refused_id, ar.refusal, la.applied AS applied,
         (m.tid_ IS NOT NULL AND (t.link_source_object_id IS NULL OR t.link_source_tenant_id IS NULL)) AS link_missing
  FROM d LEFT JOIN matched m ON m.sid = d.source_object_id
         LEFT JOIN t ON t.id = m.tid_
         LEFT JOIN link_patch lp ON lp.sid = d.source_object_id
         LEFT JOIN internal_clash ic ON ic.sid = d.source_object_id
         LEFT JOIN adopt_refused ar ON ar.sid = d.source_object_id
         LEFT JOIN links la ON la.pair_key = $pair AND la.source_object_id = d.source_object_id
                           AND la.target_user_id = m.tid_ AND m.how = 'link'),
-- the would-be attributes: mapped attributes, plus link + provenance where they are missing. Link repair: a
-- matched user whose target object lacks them gets them written, whatever the store believes (a link is
-- active only when it is on the target)
want AS (
  SELECT *, CASE WHEN how IN ('link') AND NOT link_missing THEN desired_update
                 ELSE json_merge_patch(CASE WHEN how = 'none' THEN desired_create ELSE desired_update END,
                                       link_patch) END AS want
  FROM dm),
-- each document is parsed once per user, not once per property: $paths are the JSON paths of $keys, the
-- properties desired rows carry (plan_pair samples them first); a key outside them takes the slow path
props AS (
  SELECT source_object_id, target_user_id, how, json_keys(want) AS keys,
         json_extract(target_attrs, CAST($paths AS VARCHAR[])) AS curs, json_extract(want, CAST($paths AS VARCHAR[])) AS news,
         json_extract(applied, CAST($paths AS VARCHAR[])) AS lasts
  FROM want),
-- the three-way diff. Per property: cur (the target now), new (the mapped source value), last (what this
-- pair last wrote). A linked user's property is written when new differs from last, never because cur
-- differs ("Cross-tenant synchronization doesn't query for changes in the target", cross-tenant-
-- synchronization-overview.md); with `drift: repair` also where cur differs from new. Create, adopt and
-- restore write every mapped property that differs from the target; the link extensions always compare
-- with the target. A linked user with no last-applied record was seeded with new (see plan_pair).
cmp AS (
  SELECT *, last IS NOT NULL AS known, k IN (SELECT unnest([tid, oid, cfg]) FROM ext) AS link_key
  FROM (SELECT source_object_id, target_user_id, k, how, cur, new, last FROM (
          SELECT source_object_id, target_user_id, how, keys, unnest(CAST($keys AS VARCHAR[])) AS k, unnest(curs) AS cur,
                 unnest(news) AS new, unnest(lasts) AS last FROM props)
        WHERE list_contains(keys, k)
        UNION ALL
        SELECT source_object_id, target_user_id, k, how,
               json_extract(target_attrs, '$."' || k || '"'), json_extract(want, '$."' || k || '"'),
               json_extract(applied, '$."' || k || '"')
        FROM (SELECT source_object_id, target_user_id, how, want, target_attrs, applied, unnest(json_keys(want)) AS k
              FROM want WHERE NOT list_has_all(CAST($keys AS VARCHAR[]), json_keys(want)))
        WHERE NOT list_contains(CAST($keys AS VARCHAR[]), k))),
attr_diffs AS (
  SELECT source_object_id, k, cur AS old, new FROM cmp
  WHERE CASE WHEN how <> 'link' OR link_key THEN norm(new) IS DISTINCT FROM norm(cur)
             ELSE norm(new) IS DISTINCT FROM norm(last) OR ($drift_repair AND norm(new) IS DISTINCT FROM norm(cur))
        END),
-- drift: the target no longer holds what this pair last wrote (reported; repaired only with drift: repair)
drift AS (
  SELECT source_object_id, target_user_id, k, last, cur, new FROM cmp
  WHERE how = 'link' AND NOT link_key AND known AND norm(cur) IS DISTINCT FROM norm(last)),
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
-- the None mapping type: "if the target attribute is ever empty, it's populated with the default value
-- that you specify" (customize-application-attributes.md)
fills AS (
  SELECT source_object_id, k, json_extract(target_attrs, '$."' || k || '"') AS cur,
         json_extract(fill, '$."' || k || '"') AS new
  FROM (SELECT source_object_id, fill, target_attrs, unnest(json_keys(fill)) AS k FROM want
        WHERE fill IS NOT NULL AND how IN ('link', 'adopt'))),
all_diffs AS (
  SELECT source_object_id, k, old, new FROM attr_diffs
  UNION ALL
  SELECT source_object_id, k, cur, new FROM fills WHERE norm(cur) = 'null'
  UNION ALL
  SELECT source_object_id, 'manager', to_json(cur), to_json(new_) FROM mgr
  WHERE new_ IS NOT NULL AND new_ IS DISTINCT FROM cur AND new_ IS DISTINCT FROM am),
diffs AS (
  -- list_sort orders the structs by property first, as ORDER BY k did; an ordered aggregate sorts far slower
  SELECT source_object_id, list_sort(list({{'property': k, 'old': old, 'new': new}})) AS changes
  FROM all_diffs GROUP BY source_object_id),
dup_create AS (
  SELECT source_object_id, row_number() OVER (PARTITION BY addr ORDER BY source_object_id) AS rn
  FROM want WHERE how = 'none' AND clash_id IS NULL AND refused_id IS NULL AND account_enabled IS DISTINCT FROM false),
-- a linked user whose accountEnabled changes to false at the source: blocked from sign-in by a `disable`
-- row writing accountEnabled only; the cycle's other changes go in a separate `update` row
disabling AS (
  SELECT source_object_id FROM all_diffs WHERE k = 'accountEnabled' AND CAST(new AS VARCHAR) = 'false'),
desired_plan AS (
  SELECT w.source_tenant_id, w.source_object_id, coalesce(w.target_user_id, w.refused_id) AS target_user_id,
    coalesce(w.mail, w.user_principal_name) AS mail, w.user_principal_name,
    CASE
      WHEN w.how = 'none' AND ul.sid IS NOT NULL THEN 'skip'
      WHEN w.how = 'none' AND w.clash_id IS NOT NULL THEN 'skip'
      WHEN w.how = 'none' AND w.refused_id IS NOT NULL THEN 'skip'
      WHEN w.how IN ('none', 'adopt') AND w.account_enabled = false THEN 'skip'
      WHEN w.how = 'none' AND dc.rn > 1 THEN 'skip'
      WHEN w.how = 'none' THEN (CASE WHEN $allow_create THEN 'create' ELSE 'skip' END)
      WHEN w.how = 'restore' THEN 'restore'
      WHEN NOT $allow_update THEN 'skip'
      WHEN w.how = 'adopt' THEN 'adopt'
      WHEN w.how = 'link' AND dis.source_object_id IS NOT NULL THEN 'disable'
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
      WHEN w.how = 'none' AND w.refused_id IS NOT NULL THEN
        'not adopted: target user ' || w.refused_id || ' (' || w.addr || ') ' || w.refusal || '; the target user is left untouched'
      WHEN w.how IN ('none', 'adopt') AND w.account_enabled = false THEN
        'disabled in the source; a disabled user is not provisioned until it is enabled'
      WHEN w.how = 'none' AND dc.rn > 1 THEN 'another source user has the same mail ' || w.addr || '; only one is synced'
      WHEN w.how = 'none' AND NOT $allow_create THEN 'creates are turned off for this pair'
      WHEN w.how = 'none' THEN 'in scope, no matching user in the target'
      WHEN w.how = 'restore' THEN 'back in scope within ' || {RETENTION_DAYS} || ' days of its soft delete'
      WHEN NOT $allow_update THEN 'updates are turned off for this pair'
      WHEN w.how = 'adopt' THEN 'adopts existing B2B user ' || w.target_user_id || ' (' || w.addr
           || '): external, unlinked, not protected, in a verified domain of the source tenant'
      WHEN w.how = 'link' AND dis.source_object_id IS NOT NULL THEN 'source account is disabled'
      WHEN w.how = 'link' AND w.link_missing AND df.changes IS NOT NULL THEN
        'link and provenance missing on the target user (an interrupted, held or failed write): written now'
      WHEN df.changes IS NOT NULL THEN 'source attributes changed'
      ELSE 'unchanged' END AS reason,
    w.how AS match, NULL AS tag
  FROM want w LEFT JOIN diffs df USING (source_object_id)
              LEFT JOIN dup_create dc USING (source_object_id)
              LEFT JOIN unseen_link ul ON ul.sid = w.source_object_id
              LEFT JOIN disabling dis USING (source_object_id)),
split_plan AS (
  SELECT source_tenant_id, source_object_id, target_user_id, mail, user_principal_name, action,
         CASE WHEN action = 'disable' THEN list_filter(changes_list, lambda c: c.property = 'accountEnabled')
              ELSE changes_list END AS changes_list,
         desired, reason, match, tag
  FROM desired_plan
  UNION ALL
  SELECT source_tenant_id, source_object_id, target_user_id, mail, user_principal_name, 'update',
         list_filter(changes_list, lambda c: c.property <> 'accountEnabled'), desired,
         'source attributes changed (the disable is a row of its own)', match, ':update'
  FROM desired_plan WHERE action = 'disable' AND len(list_filter(changes_list, lambda c: c.property <> 'accountEnabled')) > 0),
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
-- Entra: a user disabled at the source (and so in the target) who then leaves scope is not soft deleted
-- the gone users' last writes, read alone first: MATERIALIZED keeps DuckDB from pushing the JSON test below into
-- the scan of links, where it would parse every user's last write
gone_applied AS MATERIALIZED (
  SELECT source_object_id, applied FROM links
  WHERE pair_key = $pair AND source_object_id IN (SELECT source_object_id FROM gone)),
gone_disabled AS (
  SELECT source_object_id FROM gone_applied WHERE json_extract_string(applied, '$.accountEnabled') = 'false'),
gone_plan AS (
  SELECT source_tenant_id, source_object_id, target_user_id, mail, user_principal_name,
    CASE WHEN rejected THEN 'skip'
         WHEN source_object_id IN (SELECT source_object_id FROM gone_disabled) THEN 'skip'
         WHEN $deprovision = 'delete' AND $allow_delete THEN 'delete'
         WHEN $deprovision = 'disable' AND $allow_update AND coalesce(account_enabled, true) THEN 'disable'
         ELSE 'skip' END AS action,
    CASE WHEN $deprovision = 'disable' AND NOT rejected AND coalesce(account_enabled, true)
              AND source_object_id NOT IN (SELECT source_object_id FROM gone_disabled)
         THEN [{{'property': 'accountEnabled', 'old': CAST('true' AS JSON), 'new': CAST('false' AS JSON)}}]
         END AS changes_list,
    CASE WHEN $deprovision = 'disable' THEN json_object('accountEnabled', false) END AS desired,
    CASE WHEN rejected THEN 'source user failed validation or mapping this cycle; left as is'
         WHEN source_object_id IN (SELECT source_object_id FROM gone_disabled)
           THEN 'out of scope after it was disabled in the source; Entra does not soft delete it'
         WHEN $deprovision = 'none' THEN 'out of scope; deprovision action is none'
         WHEN $deprovision = 'delete' AND NOT $allow_delete THEN 'out of scope; deletes are turned off for this pair'
         ELSE 'out of scope or deleted in the source' END AS reason,
    'link' AS match, NULL AS tag
  FROM gone),
allrows AS (SELECT * FROM split_plan UNION ALL SELECT * FROM gone_plan)
"""  # noqa: S608 - only module constants are interpolated; values are bound

PLAN_SELECT = """
SELECT $pair AS pair_key, $cycle AS cycle_id,
       md5($cycle || ':' || coalesce(source_object_id, '') || ':' || coalesce(target_user_id, '') || coalesce(tag, ''))
         AS change_id,
       source_tenant_id, source_object_id, target_user_id, action,
       CAST(to_json(coalesce(changes_list, [])) AS JSON) AS changes, CAST(desired AS JSON) AS desired,
       reason, match, mail, user_principal_name
FROM allrows
"""
PLAN_SQL = PLAN_CTES + PLAN_SELECT

# Drift of the users this plan looked at: what the target holds now vs what this pair last wrote.
DRIFT_SELECT = """
SELECT $pair, $cycle, source_object_id, target_user_id, k, last, cur,
       $drift_repair AND norm(new) IS DISTINCT FROM norm(cur)
FROM drift
"""
DRIFT_SQL = PLAN_CTES + DRIFT_SELECT

_CTE_START = re.compile(r"^(\w+) AS (?:(?:NOT )?MATERIALIZED )?\(", re.M)


def _split_ctes(text: str) -> list[tuple[str, str]]:
    """PLAN_CTES as (name, `name AS (...)`) in order, without the comments between them."""
    body = text.split("WITH\n", 1)[1]
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
    return "WITH\n" + ",\n".join(f"{name} AS NOT MATERIALIZED (SELECT * FROM {done[name]})" if name in done else text  # noqa: S608
                                  for name, text in _PLAN_CTE_LIST if name in keep)


# Recovery rule for a linked user with no last-applied record (store lost or rebuilt, or linked by an
# older version) whose target object carries our link: take the source's current mapped values as last
# applied and write nothing now. We cannot tell a target-side edit from a source change we missed, and
# Entra lets target edits persist until the source changes, so the safe reading is "the source has not
# changed"; any difference with the target shows as drift (reported, repaired only with `drift: repair`).
# A link known only to the store (the target lacks it) is not seeded: its link PATCH, which carries the
# attributes, never landed, so nothing counts as applied and every mapped property is written.
SEED_APPLIED_SQL = """
UPDATE links SET applied = d.desired_update
FROM desired_users d
WHERE links.pair_key = $pair AND d.pair_key = $pair AND d.source_object_id = links.source_object_id
  AND links.state = 'active' AND links.applied IS NULL
  AND links.target_user_id IN (SELECT id FROM target_users WHERE tenant = $target
                               AND link_source_object_id = links.source_object_id)
"""


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
    }
    with store.connect(db) as con:
        con.execute("BEGIN")
        # Links the target carries are links we know (a rebuilt DuckDB file relearns them here).
        con.execute(
            """INSERT INTO links (pair_key, source_tenant_id, source_object_id, target_tenant, target_user_id, state,
                                 linked_at, deleted_at)
               WITH carried AS (
                 SELECT link_source_tenant_id, link_source_object_id, id FROM target_users
                 WHERE tenant = $target AND link_source_tenant_id = $source_tid AND link_source_object_id IS NOT NULL),
               -- a link already recorded as it is would be rewritten unchanged: leave it (no 100k-row rewrite a
               -- cycle). Only a source user with a target user not so recorded can be relearned, so the others
               -- are left out before one target user is chosen per source user (that choice reads all of its own).
               unknown AS (
                 SELECT c.link_source_object_id AS sid, c.id FROM carried c
                 WHERE NOT EXISTS (SELECT 1 FROM links l WHERE l.pair_key = $pair
                                   AND l.source_object_id = c.link_source_object_id AND l.target_user_id = c.id
                                   AND l.state = 'active' AND l.deleted_at IS NULL)),
               t AS (
                 SELECT * FROM carried WHERE link_source_object_id IN (SELECT sid FROM unknown)
                 QUALIFY row_number() OVER (PARTITION BY link_source_object_id ORDER BY id) = 1)
               SELECT $pair, link_source_tenant_id, link_source_object_id, $target, id, 'active', now(), NULL
               FROM t WHERE EXISTS (SELECT 1 FROM unknown u WHERE u.sid = t.link_source_object_id AND u.id = t.id)
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
        # Big pairs take the fast paths (sampled keys, comparison in temp tables); a small pair's plan is planning
        # time, which more and bigger statements would only add to.
        big = con.execute("SELECT count(*) FROM desired_users WHERE pair_key = ?",
                          [pair.key]).fetchone()[0] >= FAST_PATHS_FROM
        params.update(plan_keys(con, pair) if big else {"keys": [], "paths": []})
        con.execute("DELETE FROM plan WHERE pair_key = ?", [pair.key])
        verdicts.clear(con, pair.key)  # a new plan: the old plan's guardrail verdicts and holds no longer apply
        con.execute(NORM_MACRO)
        con.execute(SEED_APPLIED_SQL, {"pair": pair.key, "target": pair.target})
        con.execute("DELETE FROM plan_drift WHERE pair_key = ?", [pair.key])
        drift = con.execute("SELECT count(*) FROM links WHERE pair_key = ? AND applied IS NOT NULL LIMIT 1",
                            [pair.key]).fetchone()[0]  # nothing was ever applied (a first cycle): no drift to look for
        if drift and big:
            # The plan and its drift read the same per-property comparison (of every user on a full re-diff):
            # computed once, in temp tables, instead of once per statement.
            done: dict[str, str] = {}
            for name in SHARED_CTES:
                select = f"SELECT * FROM {name}"  # noqa: S608
                stmt = f"CREATE OR REPLACE TEMP TABLE plan_{name} AS {plan_ctes(done, select)} {select}"
                con.execute(stmt, _bound(stmt, params))
                done[name] = f"plan_{name}"
            for stmt in (f"INSERT INTO plan {plan_ctes(done, PLAN_SELECT)} {PLAN_SELECT}",  # noqa: S608
                         f"INSERT INTO plan_drift {plan_ctes(done, DRIFT_SELECT)} {DRIFT_SELECT}"):  # noqa: S608
                con.execute(stmt, _bound(stmt, params))
            for table in done.values():
                con.execute(f"DROP TABLE {table}")
        else:
            con.execute(f"INSERT INTO plan {PLAN_SQL}", params)  # noqa: S608 - constant SQL, values bound
            if drift:
                con.execute(f"INSERT INTO plan_drift {DRIFT_SQL}", params)  # noqa: S608 - constant SQL, values bound
        if only_user:
            con.execute("""DELETE FROM plan WHERE pair_key = ? AND NOT (coalesce(source_object_id, '') = ?
                           OR lower(coalesce(user_principal_name, '')) = lower(?)
                           OR lower(coalesce(mail, '')) = lower(?))""", [pair.key, only_user, only_user, only_user])
            con.execute("""DELETE FROM plan_drift WHERE pair_key = ? AND source_object_id NOT IN
                           (SELECT source_object_id FROM plan WHERE pair_key = ?)""", [pair.key, pair.key])
        drift = con.execute("SELECT count(*) FROM plan_drift WHERE pair_key = ?", [pair.key]).fetchone()[0]
        counts = store.count_by(con, "plan", "action", "pair_key = ?", [pair.key])
        fingerprint = stored_plan_fingerprint(con, pair.key)
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
            """INSERT INTO plan_meta (pair_key, cycle_id, fingerprint, sync_allowed, blocked_reason, planned_at,
                                     full_plan, full_at, only_user, drift)
               VALUES (?, ?, ?, ?, ?, now(), ?, CASE WHEN ? THEN now() END, ?, ?)
               ON CONFLICT (pair_key) DO UPDATE SET drift = excluded.drift,
               cycle_id = excluded.cycle_id, fingerprint = excluded.fingerprint,
               sync_allowed = excluded.sync_allowed, blocked_reason = excluded.blocked_reason,
               planned_at = excluded.planned_at, full_plan = excluded.full_plan,
               full_at = coalesce(excluded.full_at, plan_meta.full_at), only_user = excluded.only_user""",
            [pair.key, cycle_id, fingerprint, allowed, blocked, bool(full), bool(full and not only_user), only_user,
             drift])
        con.execute("COMMIT")
    return PlanSummary(pair.key, cycle_id, {a: counts.get(a, 0) for a in ACTIONS}, fingerprint, allowed, blocked,
                       full=bool(full), drift=int(drift))


# From this many desired users a pair's plan takes the fast paths (see plan_pair).
FAST_PATHS_FROM = 5000
# A sample is enough: $keys only chooses the fast path, a key outside it is compared the slow way (see `cmp`).
KEYS_SAMPLE = 5000
KEYS_SQL = f"""
WITH s AS (SELECT desired_create, desired_update FROM desired_users WHERE pair_key = $pair LIMIT {KEYS_SAMPLE})
SELECT list(DISTINCT k ORDER BY k) FROM (
  SELECT unnest(json_keys(desired_create)) AS k FROM s
  UNION ALL SELECT unnest(json_keys(desired_update)) FROM s
  UNION ALL SELECT full_name FROM target_extensions WHERE tenant = $target)
WHERE k IS NOT NULL"""  # noqa: S608 - a module constant


def plan_keys(con, pair: PairSpec) -> dict[str, list[str]]:
    """The properties desired rows of `pair` write ($keys, from a sample) and their JSON paths ($paths).

    Bound as constants so each JSON document is parsed once per user for these, not once per property.
    """
    keys = con.execute(KEYS_SQL, {"pair": pair.key, "target": pair.target}).fetchone()[0] or []
    return {"keys": keys, "paths": [f'$."{k}"' for k in keys]}


FINGERPRINT_COLUMNS = ("pair_key", "action", "source_tenant_id", "source_object_id", "target_user_id",
                       "changes", "desired")
_SORTED = orjson.OPT_SORT_KEYS
_change_key = partial(orjson.dumps, option=_SORTED)  # plan_fingerprint's order of one row's changes


def _content_rows(con, pair_key: str, batch: int = 10_000) -> Iterator[dict]:
    """The plan's writing rows as plan_fingerprint reads them, streamed in batches (a plan can be 100k rows)."""
    cur = con.execute(
        """SELECT pair_key, action, source_tenant_id, source_object_id, target_user_id,
                  CAST(changes AS VARCHAR), CAST(desired AS VARCHAR)
           FROM plan WHERE pair_key = ? AND action <> 'skip'""", [pair_key])
    while rows := cur.fetchmany(batch):
        for r in rows:
            yield dict(zip(FINGERPRINT_COLUMNS, r, strict=True))


def stored_plan_fingerprint(con, pair_key: str, batch: int = 10_000) -> str:
    """plan_fingerprint of the pair's stored plan, the same hex digest, without a dict per row.

    The first load's plan is 100k creates: building row dicts and decoding through the generic row readers
    cost seconds. Here each row's canonical text is built straight from the columns, with the same keys,
    value decoding, change order and serialisation as approvals._canonical_row.
    """
    cur = con.execute(
        """SELECT pair_key, action, source_tenant_id, source_object_id, target_user_id,
                  CAST(changes AS VARCHAR), CAST(desired AS VARCHAR)
           FROM plan WHERE pair_key = ? AND action <> 'skip'""", [pair_key])
    loads, dumps, sha = orjson.loads, orjson.dumps, hashlib.sha256
    digests: list[bytes] = []
    while rows := cur.fetchmany(batch):
        for pk, action, stid, soid, tuid, ch, de in rows:
            changes = (loads(ch) if ch else None) or []
            if len(changes) > 1:
                changes.sort(key=_change_key)
            content = {"pair_key": pk, "action": action, "source_tenant_id": stid, "source_object_id": soid,
                       "target_user_id": tuid, "changes": changes, "desired": (loads(de) if de else None) or {}}
            digests.append(sha(dumps(content, option=_SORTED, default=str)).digest())
    digests.sort()
    total = sha(len(digests).to_bytes(8, "big"))
    for d in digests:
        total.update(d)
    return total.hexdigest()[:FINGERPRINT_CHARS]


def _utcnow() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")


# A disabled user's block (accountEnabled only) and the cycle's other changes are two rows by contract.
_DISABLE_AND_UPDATE = "(count(*) = 2 AND bool_or(action = 'disable') AND bool_or(action = 'update'))"

CONSISTENCY_SQL = f"""
WITH p AS (SELECT * FROM plan WHERE pair_key = $pair AND action <> 'skip'),
t AS (SELECT * FROM target_users WHERE tenant = $target)
SELECT 'two writes on one target user' AS problem, target_user_id AS subject FROM p
  WHERE target_user_id IS NOT NULL GROUP BY target_user_id HAVING count(*) > 1 AND NOT {_DISABLE_AND_UPDATE}
UNION ALL
SELECT 'two rows for one source user', source_object_id FROM plan WHERE pair_key = $pair
  AND source_object_id IS NOT NULL GROUP BY source_object_id HAVING count(*) > 1 AND NOT {_DISABLE_AND_UPDATE}
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
