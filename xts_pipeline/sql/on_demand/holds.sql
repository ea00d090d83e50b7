-- The guardrails' holds of these changes in one cycle. Binds: pair key, cycle id, change ids.
SELECT check_name, reason FROM plan_exclusions WHERE pair_key = ? AND cycle_id = ? AND list_contains(?, change_id)
