-- How many users a tenant's raw table holds.
SELECT count(*) FROM raw_users WHERE tenant = ?
