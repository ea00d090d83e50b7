-- One source user's logged writes in one cycle, in order. Binds: pair key, cycle id, object id.
SELECT change_id, status, error_code, error_message, reason FROM provisioning_log
WHERE pair_key = ? AND cycle_id = ? AND source_object_id = ? ORDER BY logged_at
