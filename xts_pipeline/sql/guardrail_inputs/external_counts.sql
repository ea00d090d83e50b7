-- The target's external (B2B) users and its internal members now. Binds: target tenant.
-- fragment external: external.external_sql('t'), the one definition of an external user
SELECT count(*) FILTER (WHERE {{external}}), count(*) FILTER (WHERE NOT {{external}})
FROM target_users t WHERE t.tenant = ?
