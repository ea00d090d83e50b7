-- Why the mappings could not map one source user. Binds: pair key, object id.
SELECT error FROM desired_errors WHERE pair_key = ? AND source_object_id = ?
