-- The rows pandera rejected (the registered frame rej_df: id, user_principal_name, reasons), with their
-- raw documents: only ids and reasons travel through pandas.
INSERT INTO rejected_users SELECT $tenant, j.id, j.user_principal_name, j.reasons, r.data, now()
FROM rej_df j JOIN raw_users r ON r.tenant = $tenant AND r.id = j.id
