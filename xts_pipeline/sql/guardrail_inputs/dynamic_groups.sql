-- The target's dynamic groups (a membership rule), for the guardrails that read rules. Binds: target tenant.
SELECT id, display_name, CAST(group_types AS VARCHAR) AS group_types, membership_rule,
is_assignable_to_role FROM target_groups WHERE tenant = ? AND membership_rule IS NOT NULL
