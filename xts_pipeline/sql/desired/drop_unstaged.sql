-- Users gone from the source's staging leave the pair's desired state.
DELETE FROM desired_users d WHERE pair_key = $pair AND NOT EXISTS (SELECT 1 FROM staged_users s
  WHERE s.tenant = $source AND s.id = d.source_object_id)
