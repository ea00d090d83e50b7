-- The assigned groups' members as the last source run stored them. Binds: tenant.
SELECT tenant, group_ref, group_id, member_id FROM source_group_members WHERE tenant = ?
