-- applied_changes: the provisioning log of one cycle of the pair.
SELECT action, status, operation, source_upn, target_user_id, error_code, error_message, reason
FROM provisioning_log WHERE pair_key = $pair_key AND cycle_id = $cycle_id
