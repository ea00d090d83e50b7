-- Counts by 'operation/status' for one cycle of one pair.
SELECT operation || '/' || status, count(*) FROM provisioning_log
WHERE pair_key = $pair_key AND cycle_id = $cycle_id
GROUP BY 1 ORDER BY 1
