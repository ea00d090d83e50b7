-- Per user, the round's events in order, applied the way one statement per page would apply them:
-- - the last event a removal: the user is deleted;
-- - otherwise the patches after its last removal are merged in order (json_merge_patch, a left fold) onto
--   a base: nothing after a removal in this round; else the stored row when its first patch came from an
--   incremental page or the row was already written in this cycle (a full round's first copy replaces it).
-- Bound: $spool (the round's Parquet file), $tenant, $cycle. Read into the statements below by name
-- (the round_rows fragment of extract/round_into_temp and extract/round_upsert).
WITH ev AS (SELECT seq, id, CAST(data AS JSON) AS data, removed, merge FROM read_parquet($spool)),
last AS (SELECT id, max(seq) FILTER (WHERE removed) AS r, arg_max(removed, seq) AS last_removed
         FROM ev GROUP BY id),
p AS (SELECT e.id, l.r, list(e.data ORDER BY e.seq) AS patches, arg_min(e.merge, e.seq) AS first_merge
      FROM ev e JOIN last l USING (id)
      WHERE NOT l.last_removed AND NOT e.removed AND (l.r IS NULL OR e.seq > l.r) GROUP BY e.id, l.r)
SELECT $tenant AS tenant, p.id,
       CASE WHEN p.r IS NULL AND s.id IS NOT NULL AND (p.first_merge OR s.seen_cycle = $cycle)
            THEN list_reduce(list_prepend(s.data, p.patches), lambda a, b: json_merge_patch(a, b))
            ELSE list_reduce(p.patches, lambda a, b: json_merge_patch(a, b)) END AS data,
       $cycle AS seen_cycle, now() AS updated_at
FROM p LEFT JOIN raw_users s ON s.tenant = $tenant AND s.id = p.id
