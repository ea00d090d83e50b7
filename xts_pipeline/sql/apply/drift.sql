-- The pair's drift per linked user: what the target shows against what the pair last wrote, and whether
-- it is repaired. Binds: pair key.
SELECT source_object_id, any_value(target_user_id), bool_or(repaired),
       list({'property': property, 'old': applied, 'new': target} ORDER BY property)
FROM plan_drift WHERE pair_key = ? GROUP BY source_object_id ORDER BY source_object_id
