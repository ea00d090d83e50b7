-- Users read so far per tenant (raw_users), for the read bars. Binds: the tenants.
SELECT tenant, count(*) FROM raw_users WHERE list_contains(?, tenant) GROUP BY 1
