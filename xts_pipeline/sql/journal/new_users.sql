-- Source users this cycle linked or invited, by the journal: a rerun of a killed apply replays their
-- manager pass from here (their creates are done, so the plan no longer shows them as new).
SELECT DISTINCT j.source_object_id FROM write_journal j
JOIN links l ON l.pair_key = j.pair_key AND l.source_object_id = j.source_object_id
WHERE j.pair_key = $pair_key AND j.cycle_id = $cycle_id AND j.source_object_id IS NOT NULL
  AND l.state IN ('active', 'pending')
  AND (j.op_kind IN ('create', 'restore') OR j.state = 'reconciled')
ORDER BY 1
