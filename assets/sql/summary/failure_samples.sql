-- A sample of one cycle's failed writes. Binds: pair key, cycle id, how many.
SELECT source_upn, source_object_id, operation, error_code, error_message FROM provisioning_log
WHERE pair_key = ? AND cycle_id = ? AND status = 'Failure' ORDER BY logged_at LIMIT ?
