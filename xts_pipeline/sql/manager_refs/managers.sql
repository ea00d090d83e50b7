-- The manager pass (Entra's referenceResolution): for each user this cycle brought in ($created) or whose
-- manager it did, the linked manager to write, unless already written, planned ($skip) or the user is held.
-- $pair, $source, $target.
WITH lk AS (SELECT source_object_id AS sid, target_user_id AS tid, json_extract_string(applied, '$.manager') AS am
            FROM links WHERE pair_key = $pair AND state IN ('active', 'pending')),
src AS (SELECT id AS sid, json_extract_string(attrs, '$.manager.id') AS msid FROM staged_users WHERE tenant = $source),
ins AS (SELECT source_object_id AS sid, user_principal_name AS upn FROM desired_users WHERE pair_key = $pair)
SELECT s.sid, u.tid, m.tid AS mtid, json_extract_string(t.attrs, '$.manager.id') AS cur, i.upn, s.msid
FROM src s JOIN ins i ON i.sid = s.sid JOIN lk u ON u.sid = s.sid
     JOIN lk m ON m.sid = s.msid JOIN ins im ON im.sid = s.msid
     LEFT JOIN target_users t ON t.tenant = $target AND t.id = u.tid
WHERE (list_contains($created, s.sid) OR list_contains($created, s.msid))
  AND NOT list_contains($skip, s.sid)
  AND s.sid NOT IN (SELECT p.source_object_id FROM plan p JOIN plan_exclusions e USING (pair_key, change_id)
                    WHERE p.pair_key = $pair AND p.source_object_id IS NOT NULL)
  AND u.am IS DISTINCT FROM m.tid
  AND (list_contains($created, s.sid) OR json_extract_string(t.attrs, '$.manager.id') IS DISTINCT FROM m.tid)
ORDER BY s.sid
