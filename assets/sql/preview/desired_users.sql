-- desired_state: what the pair wants each in-scope source user to look like in the target.
SELECT source_object_id, user_principal_name, account_enabled, CAST(desired_update AS VARCHAR) AS desired
FROM desired_users WHERE pair_key = $pair_key
