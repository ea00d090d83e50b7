-- The stored documents of the source users a delta names. Binds: tenant, user ids.
SELECT id, data FROM raw_users WHERE tenant = ? AND list_contains(?, id)
