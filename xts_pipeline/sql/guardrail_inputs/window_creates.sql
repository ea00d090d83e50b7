-- Creates and restores logged into the target since a time, except approved cycles'. Binds: target, since.
SELECT count(*) FROM provisioning_log l
WHERE l.target_tenant = ? AND l.status = 'Success' AND l.operation IN ('create', 'restore')
  AND l.logged_at >= ?
  AND NOT EXISTS (SELECT 1 FROM approved_cycles a WHERE a.pair_key = l.pair_key AND a.cycle_id = l.cycle_id)
