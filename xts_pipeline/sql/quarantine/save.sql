-- A pair's new quarantine state.
INSERT INTO quarantine (pair_key, status, reason, since, next_retry_at, attempts, released_at, released_by, failures)
VALUES ($pair_key, $status, $reason, $since, $next_retry_at, $attempts, $released_at, $released_by, $failures)
