-- How many users the guardrails held in one cycle. Binds: pair key, cycle id.
SELECT count(DISTINCT change_id) FROM plan_exclusions WHERE pair_key = ? AND cycle_id = ?
