-- The snapshot's users whose manager is one of the given users (the ones a delta round removes): the next
-- users list shows them without a manager, though the delta does not name them. Binds: tenant, user ids.
SELECT id FROM target_users WHERE tenant = ? AND list_contains(?, json_extract_string(attrs, '$.manager.id'))
