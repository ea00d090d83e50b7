-- The planner's row about a pair's new plan (the planner is plan_meta's one writer; plan_meta.read reads it).
-- full_at moves only with a full plan of every user ($full), not with an on-demand plan of one.
INSERT INTO plan_meta (pair_key, cycle_id, fingerprint, sync_allowed, blocked_reason, planned_at, full_plan, full_at,
                       only_user, drift)
VALUES ($pair_key, $cycle_id, $fingerprint, $sync_allowed, $blocked_reason, now(), $full_plan,
        CASE WHEN $full THEN now() END, $only_user, $drift)
ON CONFLICT (pair_key) DO UPDATE SET drift = excluded.drift,
cycle_id = excluded.cycle_id, fingerprint = excluded.fingerprint,
sync_allowed = excluded.sync_allowed, blocked_reason = excluded.blocked_reason,
planned_at = excluded.planned_at, full_plan = excluded.full_plan,
full_at = coalesce(excluded.full_at, plan_meta.full_at), only_user = excluded.only_user
