-- The properties a pair's desired rows write ($keys, from a sample of $keys_sample rows) plus the target's
-- link extensions: plan_keys binds them as constants for the fast comparison.
WITH s AS (SELECT desired_create, desired_update FROM desired_users WHERE pair_key = $pair LIMIT $keys_sample)
SELECT list(DISTINCT k ORDER BY k) FROM (
  SELECT unnest(json_keys(desired_create)) AS k FROM s
  UNION ALL SELECT unnest(json_keys(desired_update)) FROM s
  UNION ALL SELECT full_name FROM target_extensions WHERE tenant = $target)
WHERE k IS NOT NULL
