-- The newest raw_users.updated_at of a tenant (the next staging watermark) and how many raw users it has.
SELECT max(updated_at), count(*) FROM raw_users WHERE tenant = $tenant
