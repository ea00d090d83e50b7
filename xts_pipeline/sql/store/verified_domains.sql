-- A tenant's verified domains (lower-case, as extract stores them).
SELECT domain FROM tenant_domains WHERE tenant = $tenant
