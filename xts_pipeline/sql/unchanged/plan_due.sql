-- The pair's last plan: whether it was an on-demand one, and whether its full re-diff is due.
-- Binds: now, the full re-diff's period in hours, pair key.
SELECT only_user, full_at IS NULL OR CAST(? AS TIMESTAMP) - full_at > INTERVAL (?) HOUR
FROM plan_meta WHERE pair_key = ?
