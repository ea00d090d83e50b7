-- One cycle's provisioning log per operation/status. Binds: pair key, cycle id.
SELECT operation || '/' || status, count(*) FROM provisioning_log WHERE pair_key = ? AND cycle_id = ?
GROUP BY 1
