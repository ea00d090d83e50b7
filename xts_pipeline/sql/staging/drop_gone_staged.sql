-- Staged users no longer in raw_users leave staged_users.
DELETE FROM staged_users s WHERE tenant = $tenant AND NOT EXISTS
    (SELECT 1 FROM raw_users w WHERE w.tenant = s.tenant AND w.id = s.id)
