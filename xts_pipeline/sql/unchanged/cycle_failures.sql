-- The writes of one cycle of the pair that failed, are pending (a warning with an error code) or were
-- blocked (hold = $blocked, vocabulary.HOLDS' kind for a stopped pair).
SELECT count(*) FROM provisioning_log WHERE pair_key = $pair_key AND cycle_id = $cycle_id
    AND (status = 'Failure' OR (status = 'Warning' AND error_code IS NOT NULL) OR hold = $blocked)
