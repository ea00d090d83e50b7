-- staged_source_users: the tenant's users that passed validation.
SELECT id, user_principal_name, mail, display_name, user_type, account_enabled
FROM staged_users WHERE tenant = $tenant
