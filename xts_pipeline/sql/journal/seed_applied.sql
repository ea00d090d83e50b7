-- Recovery rule for a linked user with no last-applied record (store lost or rebuilt, or linked by an
-- older version) whose target object carries our link: take the source's current mapped values as last
-- applied and write nothing now. We cannot tell a target-side edit from a source change we missed, and
-- Entra lets target edits persist until the source changes, so the safe reading is "the source has not
-- changed"; any difference with the target shows as drift (reported, repaired only with `drift: repair`).
-- A link known only to the store (the target lacks it) is not seeded: its link PATCH, which carries the
-- attributes, never landed, so nothing counts as applied and every mapped property is written.
UPDATE links SET applied = d.desired_update
FROM desired_users d
WHERE links.pair_key = $pair AND d.pair_key = $pair AND d.source_object_id = links.source_object_id
  AND links.state = 'active' AND links.applied IS NULL
  AND links.target_user_id IN (SELECT id FROM target_users WHERE tenant = $target
                               AND link_source_object_id = links.source_object_id)
