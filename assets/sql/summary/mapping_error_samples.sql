-- A sample of the pair's mapping errors (source id, UPN, error). Binds: pair key, how many.
SELECT source_object_id, user_principal_name, error FROM desired_errors WHERE pair_key = ? ORDER BY source_object_id LIMIT ?
