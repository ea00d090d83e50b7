-- The ids of the tenant's staged users. Binds: tenant.
SELECT id FROM staged_users WHERE tenant = ?
