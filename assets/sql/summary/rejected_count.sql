-- How many of the source's users staging rejected. Binds: source tenant.
SELECT count(*) FROM rejected_users WHERE tenant = ?
