-- Other pairs' planned creates and restores into the target, neither applied (logged) nor held.
-- $pair: this pair (left out).
-- fragment pairs: which pairs write into the target: `p.pair_key IN (SELECT unnest($pairs::VARCHAR[]))`
--   when the caller names them, else `ends_with(p.pair_key, $suffix)`
SELECT count(*) FROM plan p
WHERE {{pairs}} AND p.pair_key <> $pair AND p.action IN ('create', 'restore')
  AND NOT EXISTS (SELECT 1 FROM provisioning_log l WHERE l.pair_key = p.pair_key AND l.change_id = p.change_id)
  AND NOT EXISTS (SELECT 1 FROM plan_exclusions x WHERE x.pair_key = p.pair_key AND x.change_id = p.change_id)
