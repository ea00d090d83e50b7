-- Merge the properties a successful write set into links.applied ($applied: a JSON object; a key patched
-- with JSON null would be deleted, so apply records a cleared value as [] or "").
UPDATE links SET applied = json_merge_patch(coalesce(applied, '{}'), $applied)
WHERE pair_key = $pair_key AND source_object_id = $source_object_id
