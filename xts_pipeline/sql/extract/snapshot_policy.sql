-- The target's partner policy towards one source (executemany).
INSERT INTO target_policy (tenant, source_tenant, source_tenant_id, is_sync_allowed, policy, read_at)
VALUES (?, ?, ?, ?, ?, now())
