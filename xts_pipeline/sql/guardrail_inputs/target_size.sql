-- How many users the target has. Binds: target tenant.
SELECT count(*) FROM target_users WHERE tenant = ?
