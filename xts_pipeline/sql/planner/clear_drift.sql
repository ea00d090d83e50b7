-- A pair's old drift, before the new plan's is computed.
DELETE FROM plan_drift WHERE pair_key = ?
