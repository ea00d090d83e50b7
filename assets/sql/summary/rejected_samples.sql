-- A sample of the source's rejected users (id, UPN, reasons). Binds: source tenant, how many.
SELECT id, user_principal_name, reasons FROM rejected_users WHERE tenant = ? ORDER BY id LIMIT ?
