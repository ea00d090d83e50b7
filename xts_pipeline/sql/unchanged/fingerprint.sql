-- The pair's input fingerprint (unchanged.fingerprint): one md5 per input the plan reads, each over the md5s
-- (column h) of its rows, order-free; over the temporary tables unchanged/prepare_* made.
-- $pair, $source, $target; $groups: the scope's groups; $into: every pair key into the target.
-- fragment rejected_external: external.external_sql_over rejected_users x's documents
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
    -- the source's staged members
    (SELECT coalesce(md5(string_agg(h, ',' ORDER BY h)), '') FROM (SELECT h FROM fp_staged WHERE tenant = $source)),
    -- its rejected members
    (SELECT coalesce(md5(string_agg(h, ',' ORDER BY h)), '') FROM (SELECT md5(CAST((x.id, x.user_principal_name, x.reasons) AS VARCHAR)) AS h FROM rejected_users x WHERE x.tenant = $source AND NOT {{rejected_external}})),
    -- its scoped groups' members
    (SELECT coalesce(md5(string_agg(h, ',' ORDER BY h)), '') FROM (SELECT md5(CAST(g AS VARCHAR)) AS h FROM source_group_members g WHERE g.tenant = $source AND list_contains($groups, g.group_ref))),
    -- both tenants' domains
    (SELECT coalesce(md5(string_agg(h, ',' ORDER BY h)), '') FROM (SELECT md5(CAST((d.tenant, d.domain, d.is_default) AS VARCHAR)) AS h FROM tenant_domains d WHERE d.tenant IN ($source, $target))),
    -- the target's users but the hidden ones
    (SELECT coalesce(md5(string_agg(h, ',' ORDER BY h)), '') FROM (SELECT h FROM fp_users u WHERE u.tenant = $target AND u.id NOT IN (SELECT id FROM hidden))),
    -- this pair's links whose target user is gone
    (SELECT coalesce(md5(string_agg(h, ',' ORDER BY h)), '') FROM (SELECT md5(sid) AS h FROM missing)),
    -- the target's extensions
    (SELECT coalesce(md5(string_agg(h, ',' ORDER BY h)), '') FROM (SELECT md5(CAST(e AS VARCHAR)) AS h FROM target_extensions e WHERE e.tenant = $target)),
    -- its groups
    (SELECT coalesce(md5(string_agg(h, ',' ORDER BY h)), '') FROM (SELECT md5(CAST(g AS VARCHAR)) AS h FROM target_groups g WHERE g.tenant = $target)),
    -- its group and role memberships but the hidden users'
    (SELECT coalesce(md5(string_agg(h, ',' ORDER BY h)), '') FROM (SELECT h FROM fp_members m WHERE m.tenant = $target AND m.member_id NOT IN (SELECT id FROM hidden))),
    -- its sync policy for the source
    (SELECT coalesce(md5(string_agg(h, ',' ORDER BY h)), '') FROM (SELECT md5(CAST((p.source_tenant_id, p.is_sync_allowed, p.policy) AS VARCHAR)) AS h FROM target_policy p WHERE p.tenant = $target AND p.source_tenant = $source)),
    -- what its snapshot could not read
    (SELECT coalesce(md5(string_agg(h, ',' ORDER BY h)), '') FROM (SELECT md5(CAST((n.topic, n.note) AS VARCHAR)) AS h FROM target_notes n WHERE n.tenant = $target)),
    -- this pair's links
    (SELECT coalesce(md5(string_agg(h, ',' ORDER BY h)), '') FROM (SELECT md5(CAST((l.source_tenant_id, l.source_object_id, l.target_tenant, l.target_user_id, l.state, l.deleted_at, CAST(l.applied AS VARCHAR)) AS VARCHAR)) AS h FROM links l WHERE l.pair_key = $pair)),
    -- its approvals
    (SELECT coalesce(md5(string_agg(h, ',' ORDER BY h)), '') FROM (SELECT md5(CAST(a AS VARCHAR)) AS h FROM approvals a WHERE a.pair_key = $pair)),
    -- its quarantine
    (SELECT coalesce(md5(string_agg(h, ',' ORDER BY h)), '') FROM (SELECT md5(CAST(q AS VARCHAR)) AS h FROM quarantine q WHERE q.pair_key = $pair))
