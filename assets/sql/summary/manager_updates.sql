-- Manager writes of one cycle to users not also created, adopted or updated in it (Entra logs those
-- as part of that entry, the others as updates). Binds: pair key, cycle id, pair key, cycle id.
SELECT count(DISTINCT m.target_user_id) FROM provisioning_log m
WHERE m.pair_key = ? AND m.cycle_id = ? AND m.operation = 'manager' AND m.status = 'Success'
  AND m.target_user_id NOT IN (
    SELECT target_user_id FROM provisioning_log WHERE pair_key = ? AND cycle_id = ?
      AND operation IN ('create', 'adopt', 'update') AND status = 'Success'
      AND target_user_id IS NOT NULL)
