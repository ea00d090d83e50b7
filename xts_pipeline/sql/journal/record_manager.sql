-- The manager this pair last wrote to one target user (links.applied.manager; NULL when it was removed).
UPDATE links SET applied = json_merge_patch(coalesce(applied, '{}'::JSON), json_object('manager', $manager))
WHERE pair_key = $pair_key AND source_object_id = $source_object_id
