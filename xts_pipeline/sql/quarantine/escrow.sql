-- The failure counts a pair has accrued since its last clean apply or release.
SELECT events, failures, reference_failures, first_failure_at FROM quarantine_escrow WHERE pair_key = $pair_key
