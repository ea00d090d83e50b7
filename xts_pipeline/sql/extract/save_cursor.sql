-- The round's delta link; full_sync_at moves only after a full read or a resync ($full).
INSERT INTO delta_cursors VALUES ($tenant, $delta_link, now(), CASE WHEN $full THEN now() END)
ON CONFLICT (tenant) DO UPDATE SET delta_link = excluded.delta_link, updated_at = now(),
full_sync_at = coalesce(excluded.full_sync_at, delta_cursors.full_sync_at)
