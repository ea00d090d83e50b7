-- The pair's accrued totals; the first failure's time is kept from the row it replaces.
INSERT INTO quarantine_escrow (pair_key, events, failures, reference_failures, first_failure_at, updated_at)
VALUES ($pair_key, $events, $failures, $reference_failures, $first_failure_at, $updated_at)
ON CONFLICT (pair_key) DO UPDATE SET
    events = excluded.events, failures = excluded.failures,
    reference_failures = excluded.reference_failures, updated_at = excluded.updated_at
