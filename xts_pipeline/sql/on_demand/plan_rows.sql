-- One source user's plan rows. Binds: pair key, object id.
SELECT change_id, action, target_user_id, reason, match, CAST(changes AS VARCHAR), cycle_id FROM plan
WHERE pair_key = ? AND source_object_id = ? ORDER BY change_id
