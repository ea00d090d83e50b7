-- A full staging replaces the tenant's staged users.
DELETE FROM staged_users WHERE tenant = $tenant
