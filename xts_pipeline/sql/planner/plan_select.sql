-- The plan's rows from the plan CTEs (planner/plan_ctes), as INSERT INTO plan reads them.
SELECT $pair AS pair_key, $cycle AS cycle_id,
       md5($cycle || ':' || coalesce(source_object_id, '') || ':' || coalesce(target_user_id, '') || coalesce(tag, ''))
         AS change_id,
       source_tenant_id, source_object_id, target_user_id, action,
       CAST(to_json(coalesce(changes_list, [])) AS JSON) AS changes, CAST(desired AS JSON) AS desired,
       reason, match, mail, user_principal_name
FROM allrows
