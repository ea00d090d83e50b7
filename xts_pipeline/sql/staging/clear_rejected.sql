-- A full staging starts the tenant's rejected users afresh.
DELETE FROM rejected_users WHERE tenant = $tenant
