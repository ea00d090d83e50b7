-- The pair's plan rows the plan expectations check. Binds: pair key.
SELECT change_id, action, source_object_id, target_user_id, mail, CAST(changes AS VARCHAR) AS changes FROM plan WHERE pair_key = ?
