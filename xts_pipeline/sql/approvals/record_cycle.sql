-- Remember that this cycle of the pair applies an approved plan (its creates were approved once).
INSERT INTO approved_cycles (pair_key, cycle_id, fingerprint, recorded_at) VALUES ($pair_key, $cycle_id, $fingerprint, now())
ON CONFLICT (pair_key, cycle_id) DO UPDATE SET fingerprint = excluded.fingerprint, recorded_at = excluded.recorded_at
