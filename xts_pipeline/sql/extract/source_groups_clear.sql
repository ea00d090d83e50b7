-- A tenant's assigned groups' members, before a new read (or when no pair assigns groups any more).
DELETE FROM source_group_members WHERE tenant = ?
