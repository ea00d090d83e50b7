-- Per pair, the current plan's journaled writes and how many have their outcome (the journal of the
-- cycle plan_meta names as the plan's). Binds: the pair keys.
SELECT j.pair_key, count(*), count(*) FILTER (WHERE j.state <> 'in_flight')
FROM write_journal j JOIN plan_meta m ON m.pair_key = j.pair_key AND m.cycle_id = j.cycle_id
WHERE list_contains(?, j.pair_key) GROUP BY 1
