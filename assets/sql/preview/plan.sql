-- provisioning_plan: the pair's planned writes (skips write nothing and are left out).
SELECT action, user_principal_name, target_user_id, reason, CAST(changes AS VARCHAR) AS changes
FROM plan WHERE pair_key = $pair_key AND action <> 'skip'
