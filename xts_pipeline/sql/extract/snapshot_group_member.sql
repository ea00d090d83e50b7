-- A member of one of the target's role-assignable groups (executemany).
INSERT INTO target_group_members (tenant, group_id, member_id) VALUES (?, ?, ?)
