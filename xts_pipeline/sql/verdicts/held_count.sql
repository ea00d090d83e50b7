-- How many users one cycle's guardrails held. Binds: pair key, cycle id.
SELECT count(DISTINCT change_id) FROM plan_exclusions WHERE pair_key = ? AND cycle_id IS NOT DISTINCT FROM ?
