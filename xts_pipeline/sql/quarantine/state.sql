-- A pair's quarantine row, in QuarantineState's field order (the newest, should an older file hold several).
SELECT pair_key, status, reason, since, next_retry_at, attempts, released_at, released_by, failures
FROM quarantine WHERE pair_key = $pair_key
ORDER BY since DESC NULLS LAST LIMIT 1
