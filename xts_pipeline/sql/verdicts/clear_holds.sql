-- A pair's holds, void once a new plan replaces the one they judged. Binds: pair key.
DELETE FROM plan_exclusions WHERE pair_key = ?
