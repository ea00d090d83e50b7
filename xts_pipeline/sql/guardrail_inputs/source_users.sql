-- The staged source users the pair's plan writes (not skipped, not deleted). Binds: source tenant, pair key.
-- fragment writing: inputs' writing-row condition over alias p (rows.writes in SQL, from its constants)
SELECT s.id, s.user_principal_name, s.user_type, s.creation_type,
       json_extract_string(s.attrs, '$.externalUserState') AS external_user_state FROM staged_users s
WHERE s.tenant = ? AND s.id IN (SELECT p.source_object_id FROM plan p WHERE p.pair_key = ?
                                AND p.action NOT IN ('skip', 'delete') AND {{writing}})
