-- A link extension's full property name on the target (executemany).
INSERT INTO target_extensions (tenant, short_name, full_name) VALUES (?, ?, ?)
