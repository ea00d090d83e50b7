-- An extraction ran during the pair's run: nothing is recorded for it. Binds: pair key.
DELETE FROM pair_inputs WHERE pair_key = ?
