-- One cycle's logged writes per status. Binds: pair key, cycle id.
SELECT status, count(*) FROM provisioning_log WHERE pair_key = ? AND cycle_id = ? GROUP BY 1
