-- The link extensions' names the snapshot read on the target app. Binds: target tenant.
SELECT short_name, full_name FROM target_extensions WHERE tenant = ?
