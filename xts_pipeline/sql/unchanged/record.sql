-- A clean run's input fingerprint. Binds: fingerprint, run id, cycle id, pair key.
UPDATE pair_inputs SET fingerprint = ?, run_id = ?, cycle_id = ?, recorded_at = now() WHERE pair_key = ?
