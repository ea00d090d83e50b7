-- Of the given target users, the ones a pair created since the target's snapshot (its journal's create, done,
-- and no restore after it): new objects, so they manage nobody the delta does not name.
-- Binds: $ids (user ids), $tenant (the target).
SELECT DISTINCT j.target_user_id FROM write_journal j
WHERE j.op_kind = 'create' AND j.state = 'done' AND list_contains($ids, j.target_user_id)
  AND j.finished_at >= (SELECT value FROM watermarks WHERE name = 'snapshot:' || $tenant)
  AND NOT EXISTS (SELECT 1 FROM write_journal r WHERE r.target_user_id = j.target_user_id
                  AND r.op_kind = 'restore' AND r.finished_at >= j.finished_at)
