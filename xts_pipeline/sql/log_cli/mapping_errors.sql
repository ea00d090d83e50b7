-- `xts log`'s mapping errors of these pairs, filtered by user. $pair_sep and $shown_sep as in
-- log_cli/provisioning.
SELECT CAST(NULL AS TIMESTAMP), NULL, replace(pair_key, $pair_sep, $shown_sep), 'mapping_error', 'map', 'Error',
       coalesce(user_principal_name, source_object_id), NULL, error
FROM desired_errors WHERE list_contains($pairs, pair_key)
  AND ($like IS NULL OR lower(coalesce(user_principal_name, '')) LIKE $like OR source_object_id = $user)
ORDER BY source_object_id LIMIT $limit
