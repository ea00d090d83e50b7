-- One cycle's writes kept back because the pair was stopped (hold $blocked, vocabulary's). $pair_key, $cycle_id.
SELECT count(*) FROM provisioning_log WHERE pair_key = $pair_key AND cycle_id = $cycle_id AND status = 'Skipped' AND hold = $blocked
