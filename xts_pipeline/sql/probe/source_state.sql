-- What the probe needs of a source: its delta link, and whether staging has seen everything the last round
-- stored (its watermark at the newest raw row, every raw user staged or rejected and nothing else), and that
-- watermark.
-- Binds: $tenant.
SELECT
    (SELECT delta_link FROM delta_cursors WHERE tenant = $tenant),
    coalesce((SELECT max(updated_at) FROM raw_users WHERE tenant = $tenant)
             <= (SELECT value FROM watermarks WHERE name = 'stage:' || $tenant), false),
    (SELECT count(*) FROM raw_users r WHERE r.tenant = $tenant AND r.id NOT IN (
        SELECT id FROM staged_users WHERE tenant = $tenant UNION ALL SELECT id FROM rejected_users WHERE tenant = $tenant))
  + (SELECT count(*) FROM (SELECT id FROM staged_users WHERE tenant = $tenant
                           UNION SELECT id FROM rejected_users WHERE tenant = $tenant) s
     WHERE s.id NOT IN (SELECT id FROM raw_users WHERE tenant = $tenant)),
    (SELECT CAST(value AS VARCHAR) FROM watermarks WHERE name = 'stage:' || $tenant)
