-- Drift of the users this plan looked at (planner/plan_ctes): what the target holds now vs what this pair
-- last wrote, as INSERT INTO plan_drift reads it.
SELECT $pair, $cycle, source_object_id, target_user_id, k, last, cur,
       $drift_repair AND norm(new) IS DISTINCT FROM norm(cur)
FROM drift
