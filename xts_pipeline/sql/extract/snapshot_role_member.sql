-- A holder of an activated directory role (executemany).
INSERT INTO target_role_members (tenant, role_id, role_name, member_id) VALUES (?, ?, ?, ?)
