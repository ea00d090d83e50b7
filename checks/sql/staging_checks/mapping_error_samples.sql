-- The first mapping errors of the pair, for the check's message. Binds: pair key.
SELECT source_object_id, user_principal_name, error FROM desired_errors WHERE pair_key = ? ORDER BY source_object_id LIMIT 5
