-- A tenant's verified domains, replaced by a new read: first the old ones go, then each domain is inserted
-- (executemany: tenant, domain, is_default).
DELETE FROM tenant_domains WHERE tenant = ?;
INSERT INTO tenant_domains (tenant, domain, is_default, read_at) VALUES (?, ?, ?, now());
