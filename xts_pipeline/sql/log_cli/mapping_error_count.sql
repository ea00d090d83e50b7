-- How many of the pair's users the mappings could not map. Binds: pair key.
SELECT count(*) FROM desired_errors WHERE pair_key = ?
