-- How many drifted properties the new plan found.
SELECT count(*) FROM plan_drift WHERE pair_key = ?
