-- How many of the tenant's users staging rejected. Binds: tenant.
SELECT count(*) FROM rejected_users WHERE tenant = ?
