-- How many users of the tenant raw_users holds.
SELECT count(*) FROM raw_users WHERE tenant = $tenant
