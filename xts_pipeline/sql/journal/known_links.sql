-- Of these source users, those the store already links (pending or active) to a target user that is in the
-- snapshot, or whose link is newer than the snapshot (a user an admin deleted in the target since is
-- provisioned again instead): source_object_id, target_user_id.
SELECT l.source_object_id, l.target_user_id FROM links l
WHERE l.pair_key = $pair_key AND l.state IN ('active', 'pending') AND list_contains($sids, l.source_object_id)
  AND (l.target_user_id IN (SELECT id FROM target_users WHERE tenant = $target)
       OR l.linked_at >= coalesce((SELECT max(value) FROM watermarks WHERE name = 'snapshot:' || $target),
                                  CAST('-infinity' AS TIMESTAMP)))
