-- The expected echo of every pair into the targets: linked by a pair into the target, link on the user,
-- every last-written value in place (each document parsed once, values compared as the planner normalises
-- them; needs the planner's norm macro). $targets: the target tenants.
CREATE OR REPLACE TEMP TABLE fp_echo AS
SELECT tenant, pair_key, id FROM (
  SELECT t.tenant, l.pair_key, t.id, CAST(t.attrs AS MAP(VARCHAR, JSON)) AS cur,
         CAST(l.applied AS MAP(VARCHAR, JSON)) AS last
  FROM links l JOIN target_users t ON t.tenant = l.target_tenant AND t.id = l.target_user_id
  WHERE list_contains($targets, l.target_tenant) AND l.state IN ('active', 'pending')
    AND t.link_source_object_id = l.source_object_id AND t.link_source_tenant_id = l.source_tenant_id
    AND t.link_sync_config IS NOT DISTINCT FROM l.pair_key
    AND json_extract_string(l.applied, '$.manager') IS NOT DISTINCT FROM json_extract_string(t.attrs, '$.manager.id'))
WHERE coalesce(list_bool_and(list_transform(list_filter(map_keys(last), lambda k: k <> 'manager'),
                                            lambda k: norm(cur[k]) IS NOT DISTINCT FROM norm(last[k]))), true)
