-- One user's mapping error (executemany).
INSERT INTO desired_errors (pair_key, source_object_id, user_principal_name, error) VALUES (?, ?, ?, ?)
