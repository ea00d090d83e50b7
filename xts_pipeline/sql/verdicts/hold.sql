-- One user held back by one guardrail (apply skips the change and logs why).
INSERT INTO plan_exclusions (pair_key, cycle_id, change_id, check_name, reason) VALUES (?, ?, ?, ?, ?)
