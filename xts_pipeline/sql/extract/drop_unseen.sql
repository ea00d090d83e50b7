-- After a full read: users the read did not see no longer exist in the source.
DELETE FROM raw_users WHERE tenant = ? AND seen_cycle IS DISTINCT FROM ?
