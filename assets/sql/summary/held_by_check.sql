-- Users the guardrails held in one cycle, per guardrail. Binds: pair key, cycle id.
SELECT e.check_name, count(DISTINCT e.change_id) FROM plan_exclusions e
WHERE e.pair_key = ? AND e.cycle_id = ? GROUP BY 1 ORDER BY 1
