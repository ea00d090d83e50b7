-- One approval of one exact plan of one pair.
INSERT INTO approvals (pair_key, fingerprint, approved_by, approved_at, reason)
VALUES ($pair_key, $fingerprint, $approved_by, $approved_at, $reason)
