-- Whether this pair ever applied a value (a first cycle has no drift to look for).
SELECT count(*) FROM links WHERE pair_key = ? AND applied IS NOT NULL LIMIT 1
