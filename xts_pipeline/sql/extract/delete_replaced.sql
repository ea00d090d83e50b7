-- The stored rows a small round replaces (its new rows are in temp table raw_round).
DELETE FROM raw_users WHERE tenant = $tenant AND id IN (SELECT id FROM raw_round)
