-- One provisioning-log entry, in LogEntry.row()'s order.
INSERT INTO provisioning_log (cycle_id, change_id, pair_key, logged_at, action, status, operation, source_tenant_id,
                              source_object_id, source_upn, target_tenant, target_user_id, modified_properties,
                              error_code, error_message, duration_ms, reason, hold)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
