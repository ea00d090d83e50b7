-- The provisioning plan of one pair as a pipeline of CTEs (planner.py runs it whole, or CTE by CTE into temp
-- tables for a big pair; see plan_ctes). Values are bound: $pair, $target, $source, $source_tid, $now,
-- $full, $since, $last_cycle, $keys, $paths, $protected, $drift_repair, $allow_*, $deprovision, $retention_days.
-- Named substitutions, filled by planner.py from its own constants only (queries.render; never user data):
-- fragment external_t: external.external_sql("t"): is target user t an external (B2B) user
-- fragment invited_address_a: the invited address of target row a, from its #EXT# UPN (planner._invited_address)
-- fragment invited_address_t: the same for target row t
-- fragment fill_key: mappings.FILL_KEY, the key under which desired_update carries the None-type defaults
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
    AND t.link_source_object_id IS NULL AND {{external_t}}
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
    AND l.deleted_at >= CAST($now AS TIMESTAMP) - to_days(CAST($retention_days AS INTEGER))
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
  SELECT t.id, t.user_principal_name, lower(t.mail) AS mail_l, {{external_t}} AS external,
         -- before the first #EXT#@ of the UPN: for a UPN with one #EXT#@, the invited address with its last @
         -- written as _ (local_domain#EXT#@...); a UPN with two or more is compared in full
         split_part(lower(t.user_principal_name), '#ext#@', 1) AS ext_key,
         lower(t.user_principal_name) LIKE '%#ext#@%#ext#@%' AS ext_many
  FROM t),
candidate_keys AS (  -- equi-joins, not one OR join (which DuckDB can only run as a nested loop)
  SELECT d.source_object_id AS sid, d.addr, a.id AS tid_ FROM d JOIN t_keys a ON a.mail_l = d.addr WHERE a.external
  UNION
  SELECT d.source_object_id, d.addr, a.id FROM d JOIN t_keys a ON a.ext_key = regexp_replace(d.addr, '@([^@]*)$', '_\1')
  WHERE a.external AND coalesce({{invited_address_a}} = d.addr, false)
  UNION
  SELECT d.source_object_id, d.addr, a.id FROM d JOIN t_keys a ON {{invited_address_a}} = d.addr
  WHERE a.external AND a.ext_many),
candidates AS (
  SELECT k.sid, k.addr, t.*, lower(t.mail) AS mail_l, {{invited_address_t}} AS ext_addr, {{external_t}} AS external
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
    SELECT d.source_object_id AS sid, t.id AS tid_ FROM d JOIN t ON lower(t.mail) = d.addr WHERE NOT {{external_t}}
    UNION ALL
    SELECT d.source_object_id, t.id FROM d JOIN t ON lower(t.user_principal_name) = d.addr WHERE NOT {{external_t}})
  GROUP BY sid),
link_patch AS (
  SELECT d.source_object_id AS sid,
         json_object(ext.tid, d.source_tenant_id, ext.oid, d.source_object_id, ext.cfg, $pair) AS patch
  FROM d, ext),
-- desired rows with their match, and what this pair last wrote to the matched user (links.applied)
dm AS (
  SELECT d.* REPLACE (json_merge_patch(d.desired_update, '{"{{fill_key}}": null}') AS desired_update),
         json_extract(d.desired_update, '$."{{fill_key}}"') AS fill, m.tid_ AS target_user_id, coalesce(m.how, 'none') AS how, t.attrs AS target_attrs,
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
  SELECT source_object_id, list_sort(list({'property': k, 'old': old, 'new': new})) AS changes
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
      WHEN w.how = 'restore' THEN 'back in scope within ' || $retention_days || ' days of its soft delete'
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
    AND j.source_object_id IS NOT NULL AND t.link_source_object_id IS NULL AND {{external_t}}
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
         THEN [{'property': 'accountEnabled', 'old': CAST('true' AS JSON), 'new': CAST('false' AS JSON)}]
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
