-- A sample of one cycle's held users (UPN or change id, guardrail, reason). Binds: pair key, cycle id, how many.
SELECT coalesce(p.user_principal_name, e.change_id), e.check_name, e.reason FROM plan_exclusions e
LEFT JOIN plan p ON p.pair_key = e.pair_key AND p.change_id = e.change_id
WHERE e.pair_key = ? AND e.cycle_id = ? ORDER BY 1 LIMIT ?
