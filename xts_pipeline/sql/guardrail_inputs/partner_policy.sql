-- The target's cross-tenant sync policy for the source: its flag and raw JSON. Binds: target, source tenant.
SELECT is_sync_allowed, CAST(policy AS VARCHAR) FROM target_policy WHERE tenant = ? AND source_tenant = ?
