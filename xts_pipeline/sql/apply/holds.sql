-- The pair's held changes -> which guardrail held each and why. Binds: pair key.
SELECT change_id, check_name || ': ' || reason FROM plan_exclusions WHERE pair_key = ?
