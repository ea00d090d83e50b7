-- What the store knows of one link: `active` only once the link is on the target, `pending` before,
-- `deleted` after the target user was deleted.
INSERT INTO links (pair_key, source_tenant_id, source_object_id, target_tenant, target_user_id, state,
                   linked_at, deleted_at)
VALUES ($pair_key, $source_tenant_id, $source_object_id, $target_tenant, $target_user_id, $state, now(),
        CASE WHEN $state = 'deleted' THEN now() END)
ON CONFLICT (pair_key, source_object_id) DO UPDATE SET target_user_id = excluded.target_user_id,
state = excluded.state, linked_at = CASE WHEN excluded.state IN ('active', 'pending') THEN now()
ELSE links.linked_at END, deleted_at = excluded.deleted_at
