-- `xts log`'s provisioning rows, newest first, filtered by pair, cycle, action, status and user (each
-- filter NULL for any). $pair_sep and $shown_sep: vocabulary's, so the pair shows as people read it.
SELECT logged_at, cycle_id, replace(pair_key, $pair_sep, $shown_sep), 'provisioning', action, status,
       coalesce(source_upn, source_object_id), target_user_id,
       concat_ws('; ', nullif(operation, action), error_code, error_message, reason,
                 CASE WHEN modified_properties IS NOT NULL AND CAST(modified_properties AS VARCHAR)
                      NOT IN ('[]', 'null') THEN CAST(modified_properties AS VARCHAR) END)
FROM provisioning_log
WHERE ($pair IS NULL OR pair_key = $pair) AND ($cycle IS NULL OR cycle_id = $cycle)
  AND ($action IS NULL OR lower(action) = lower($action) OR lower(operation) = lower($action))
  AND ($status IS NULL OR lower(status) = lower($status))
  AND ($like IS NULL OR lower(coalesce(source_upn, '')) LIKE $like OR source_object_id = $user
       OR target_user_id = $user)
ORDER BY logged_at DESC LIMIT $limit
