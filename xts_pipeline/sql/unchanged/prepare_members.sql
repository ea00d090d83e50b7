-- The targets' group and role memberships, hashed. $targets: the target tenants.
CREATE OR REPLACE TEMP TABLE fp_members AS
SELECT tenant, member_id, md5(CAST(m AS VARCHAR)) AS h FROM target_group_members m
WHERE list_contains($targets, tenant)
UNION ALL
SELECT tenant, member_id, md5(CAST(m AS VARCHAR)) FROM target_role_members m WHERE list_contains($targets, tenant)
