-- Who holds a directory role in the target -> the roles, a role of a (role-assignable) group held by each
-- of its members. $t: target tenant.
WITH r AS (SELECT member_id, role_name FROM target_role_members WHERE tenant = $t),
x AS (SELECT member_id, role_name FROM r
      UNION ALL SELECT m.member_id, r.role_name || ' (through group)' FROM r
      JOIN target_group_members m ON m.tenant = $t AND m.group_id = r.member_id)
SELECT member_id, string_agg(DISTINCT role_name, ', ' ORDER BY role_name) FROM x GROUP BY 1
