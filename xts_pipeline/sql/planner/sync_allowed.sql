-- Whether the target's cross-tenant partner setting for the source lets it sync users in (no row: never read).
SELECT is_sync_allowed FROM target_policy WHERE tenant = $target AND source_tenant = $source
