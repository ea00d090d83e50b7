-- What the probe needs of a target's snapshot: the users delta link taken before it read the users, the
-- link extensions' names it read them with, and when the snapshot was taken (the snapshot's watermark).
-- Binds: tenant (three times).
SELECT (SELECT delta_link FROM target_cursors WHERE tenant = ?),
       (SELECT json_group_object(short_name, full_name) FROM target_extensions WHERE tenant = ?),
       (SELECT CAST(value AS VARCHAR) FROM watermarks WHERE name = 'snapshot:' || ?)
