-- A pair's plan_meta row: which cycle made its current plan, its fingerprint, and whether it may write.
SELECT pair_key, cycle_id, fingerprint, sync_allowed, blocked_reason, planned_at, full_plan, full_at, only_user,
       coalesce(drift, 0) AS drift
FROM plan_meta WHERE pair_key = $pair_key
