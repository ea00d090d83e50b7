-- The verdicts recorded for a pair, whatever plan they judged. Binds: pair key.
SELECT cycle_id, fingerprint, check_name, passed, stops_pair, severity, message, approve_command,
CAST(metadata AS VARCHAR) FROM guardrail_verdicts WHERE pair_key = ? ORDER BY check_name
