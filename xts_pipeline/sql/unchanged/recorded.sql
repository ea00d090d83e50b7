-- The recorded fingerprints of these pairs (a list of pair keys), with the run and cycle that recorded them.
SELECT pair_key, fingerprint, run_id, cycle_id FROM pair_inputs
WHERE list_contains(?, pair_key) AND fingerprint IS NOT NULL
