-- How many raw users the source tenant has. Binds: source tenant.
SELECT count(*) FROM raw_users WHERE tenant = ?
