-- Links the target carries are links we know (a rebuilt DuckDB file relearns them here).
INSERT INTO links (pair_key, source_tenant_id, source_object_id, target_tenant, target_user_id, state,
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
state = 'active', deleted_at = NULL
