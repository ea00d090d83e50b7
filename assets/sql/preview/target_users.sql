-- target_snapshot: the target's users, with the link a synced user carries.
SELECT id, user_principal_name, user_type, creation_type, link_source_object_id
FROM target_users WHERE tenant = $tenant
