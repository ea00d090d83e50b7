-- The users delta link a target snapshot took before it read the users ($deltatoken=latest), kept with the
-- snapshot. Binds: tenant, link.
INSERT OR REPLACE INTO target_cursors (tenant, delta_link, taken_at) VALUES (?, ?, now())
