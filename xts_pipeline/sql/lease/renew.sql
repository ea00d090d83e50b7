-- The heartbeat: push a lease's expiry on; no row back means it was taken over.
UPDATE leases SET renewed_at = $now, expires_at = $until WHERE name = $name AND owner = $owner
RETURNING name
