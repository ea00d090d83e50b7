-- The source users the pair's assigned groups hold (direct members, as Entra reads them).
SELECT DISTINCT member_id FROM source_group_members WHERE tenant = ? AND list_contains(?, group_ref)
