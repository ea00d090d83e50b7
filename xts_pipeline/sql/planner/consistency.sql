-- Invariants every plan must meet before a write (planner.consistency_problems; apply re-checks them).
-- Named substitutions, filled by planner.py from its own constants only (queries.render; never user data):
-- fragment external_t: external.external_sql("t"): is target user t an external (B2B) user
-- A disabled user's block (accountEnabled only) and the cycle's other changes are two rows by contract.
WITH p AS (SELECT * FROM plan WHERE pair_key = $pair AND action <> 'skip'),
t AS (SELECT * FROM target_users WHERE tenant = $target)
SELECT 'two writes on one target user' AS problem, target_user_id AS subject FROM p
  WHERE target_user_id IS NOT NULL GROUP BY target_user_id HAVING count(*) > 1 AND NOT (count(*) = 2 AND bool_or(action = 'disable') AND bool_or(action = 'update'))
UNION ALL
SELECT 'two rows for one source user', source_object_id FROM plan WHERE pair_key = $pair
  AND source_object_id IS NOT NULL GROUP BY source_object_id HAVING count(*) > 1 AND NOT (count(*) = 2 AND bool_or(action = 'disable') AND bool_or(action = 'update'))
UNION ALL
SELECT 'two creates with one mail', lower(mail) FROM p WHERE action = 'create' GROUP BY lower(mail) HAVING count(*) > 1
UNION ALL
SELECT 'create without an address', source_object_id FROM p WHERE action = 'create' AND mail IS NULL
UNION ALL
SELECT action || ' without a target user', source_object_id FROM p WHERE action <> 'create' AND target_user_id IS NULL
UNION ALL
SELECT 'write on an internal member of the target', p.target_user_id FROM p JOIN t ON t.id = p.target_user_id
  WHERE NOT {{external_t}}
UNION ALL
SELECT 'delete of a user this pair does not own', p.target_user_id FROM p LEFT JOIN t ON t.id = p.target_user_id
  WHERE p.action = 'delete' AND coalesce(t.link_source_tenant_id, '') <> $source_tid
    AND p.target_user_id NOT IN (SELECT target_user_id FROM links WHERE pair_key = $pair)
    AND p.target_user_id NOT IN (SELECT target_user_id FROM write_journal WHERE pair_key = $pair
                                 AND op_kind IN ('create', 'restore') AND target_user_id IS NOT NULL)
    AND p.target_user_id NOT IN (SELECT t2.id FROM write_journal j JOIN t t2 ON lower(t2.mail) = lower(j.mail)
                                 WHERE j.pair_key = $pair AND j.op_kind = 'create' AND j.state = 'in_flight')
LIMIT $limit
