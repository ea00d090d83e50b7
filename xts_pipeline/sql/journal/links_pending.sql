-- A link is active only while it is on the target: one the snapshot shows missing (read after the link was
-- recorded) is pending again, so the plan writes it back (link repair).
UPDATE links SET state = 'pending' WHERE pair_key = $pair AND state = 'active'
AND target_user_id IN (SELECT id FROM target_users WHERE tenant = $target
                       AND link_source_object_id IS NULL)
AND linked_at < coalesce((SELECT max(value) FROM watermarks WHERE name = 'snapshot:' || $target),
                         CAST('infinity' AS TIMESTAMP))
