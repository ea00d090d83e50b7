-- The change probe's copy of a target's users starts as the snapshot's, less the users a delta names (their
-- new rows are loaded after). Binds: tenant, the delta's user ids.
INSERT INTO target_users_load SELECT * FROM target_users WHERE tenant = ? AND NOT list_contains(?, id)
