-- The held entries (Skipped with a hold) of one cycle of one pair, replaced when the cycle is logged as held again.
DELETE FROM provisioning_log WHERE pair_key = $pair_key AND cycle_id = $cycle_id AND status = 'Skipped' AND hold IS NOT NULL
