-- The first rejected users of the tenant, for the check's message. Binds: tenant.
SELECT id, user_principal_name, reasons FROM rejected_users WHERE tenant = ? ORDER BY id LIMIT 5
