-- A tenant's verified domains as the last source run stored them. Binds: tenant.
SELECT domain, is_default FROM tenant_domains WHERE tenant = ?
