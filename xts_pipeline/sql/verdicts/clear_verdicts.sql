-- A pair's recorded verdicts, replaced by a new plan's. Binds: pair key.
DELETE FROM guardrail_verdicts WHERE pair_key = ?
