-- The plan's writing rows with the columns its fingerprint covers (fingerprint.COLUMNS, in order).
SELECT pair_key, action, source_tenant_id, source_object_id, target_user_id,
       CAST(changes AS VARCHAR), CAST(desired AS VARCHAR)
FROM plan WHERE pair_key = $pair AND action <> 'skip'
