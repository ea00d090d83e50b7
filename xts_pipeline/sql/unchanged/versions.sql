-- The watermarks of the source's staging and the target's snapshot (which inputs the store holds now).
-- Binds: their names.
SELECT name, CAST(value AS VARCHAR), info FROM watermarks WHERE list_contains(?, name) ORDER BY 1
