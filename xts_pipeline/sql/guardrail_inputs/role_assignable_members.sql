-- Members of the target's role-assignable groups -> one such group's name. Binds: target tenant.
SELECT m.member_id, min(g.display_name) FROM target_group_members m
JOIN target_groups g ON g.tenant = m.tenant AND g.id = m.group_id
WHERE m.tenant = ? AND g.is_assignable_to_role GROUP BY 1
