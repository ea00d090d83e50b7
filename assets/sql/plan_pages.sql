-- The whole plan of a pair (every writing row) for the paged markdown, creates last.
SELECT change_id, action, user_principal_name, target_user_id, reason, CAST(changes AS VARCHAR) AS changes
FROM plan WHERE pair_key = $pair_key AND action <> 'skip'
ORDER BY CASE action WHEN 'create' THEN 1 ELSE 0 END, action, user_principal_name
