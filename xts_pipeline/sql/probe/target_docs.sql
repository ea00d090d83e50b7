-- The snapshot's documents of the target users a delta names. Binds: tenant, user ids.
SELECT id, attrs FROM target_users WHERE tenant = ? AND list_contains(?, id)
