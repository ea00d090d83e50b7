-- The source's staged users whose raw row changed after $since (all of them when $since is NULL), by id.
SELECT s.id, CAST(s.attrs AS VARCHAR) AS attrs FROM staged_users s
JOIN raw_users r ON r.tenant = s.tenant AND r.id = s.id
WHERE s.tenant = $t AND (CAST($since AS TIMESTAMP) IS NULL OR r.updated_at > $since) ORDER BY s.id
