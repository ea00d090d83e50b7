-- The pair's plan rows apply writes or logs (an unchanged skip is neither), in a stable order.
-- Binds: pair key.
SELECT change_id, source_tenant_id, source_object_id, target_user_id, action,
       CAST(changes AS VARCHAR) AS changes, CAST(desired AS VARCHAR) AS desired, reason, match,
       mail, user_principal_name
FROM plan WHERE pair_key = ? AND (action <> 'skip' OR reason <> 'unchanged')
ORDER BY action, source_object_id
