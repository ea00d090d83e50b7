-- Keep a lease for its owner, unbound from this process, until $until (the run's next step takes it up).
UPDATE leases SET pid = NULL, pid_start = NULL, renewed_at = $now, expires_at = $until
WHERE name = $name AND owner = $owner
