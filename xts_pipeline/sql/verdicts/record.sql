-- One guardrail's verdict on one plan (cycle and fingerprint) of a pair.
INSERT INTO guardrail_verdicts (pair_key, cycle_id, fingerprint, check_name, passed, stops_pair,
severity, message, approve_command, metadata, evaluated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now())
