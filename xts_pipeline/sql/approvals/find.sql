-- The latest approval of exactly this plan of this pair.
SELECT pair_key, fingerprint, approved_by, approved_at, reason FROM approvals
WHERE pair_key = $pair_key AND fingerprint = $fingerprint
ORDER BY approved_at DESC LIMIT 1
