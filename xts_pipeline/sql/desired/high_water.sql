-- The newest raw row of the source: what this desired state was computed up to.
SELECT max(updated_at) FROM raw_users WHERE tenant = ?
