-- The pair's plan per action, the cycle's held users left out. Binds: pair key, cycle id.
SELECT action, count(*) FROM plan p WHERE pair_key = ? AND NOT EXISTS (
SELECT 1 FROM plan_exclusions e WHERE e.pair_key = p.pair_key AND e.cycle_id = ?
  AND e.change_id = p.change_id) GROUP BY 1
