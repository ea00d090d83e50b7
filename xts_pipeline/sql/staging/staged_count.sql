-- How many users of the tenant are staged.
SELECT count(*) FROM staged_users WHERE tenant = $tenant
