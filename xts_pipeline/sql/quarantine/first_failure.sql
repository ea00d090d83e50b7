-- When the pair's first accrued failure happened (retries are measured from it).
SELECT first_failure_at FROM quarantine_escrow WHERE pair_key = $pair_key
