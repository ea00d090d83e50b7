-- A direct member of an assigned group (executemany).
INSERT INTO source_group_members (tenant, group_ref, group_id, member_id) VALUES (?, ?, ?, ?)
