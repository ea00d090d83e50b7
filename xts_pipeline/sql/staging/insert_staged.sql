-- The rows that passed (the registered frame ok_df: the validated columns), with their raw documents.
INSERT INTO staged_users SELECT $tenant, o.id, o.user_principal_name, o.mail, o.display_name,
    o.user_type, o.creation_type, o.account_enabled, r.data
FROM ok_df o JOIN raw_users r ON r.tenant = $tenant AND r.id = o.id
