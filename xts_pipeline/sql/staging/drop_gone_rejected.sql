-- Rejected users no longer in raw_users leave rejected_users.
DELETE FROM rejected_users r WHERE tenant = $tenant AND NOT EXISTS
    (SELECT 1 FROM raw_users w WHERE w.tenant = r.tenant AND w.id = r.id)
