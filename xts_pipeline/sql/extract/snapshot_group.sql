-- One of the target's groups (executemany).
INSERT INTO target_groups (tenant, id, display_name, group_types, membership_rule, membership_rule_processing_state,
                           is_assignable_to_role, attrs)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
