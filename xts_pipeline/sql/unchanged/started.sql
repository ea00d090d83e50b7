-- The versions of the inputs the pair's current run started from. Binds: pair key.
SELECT versions FROM pair_inputs WHERE pair_key = ?
