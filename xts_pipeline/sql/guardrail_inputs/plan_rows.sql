-- A pair's writing plan rows, each with `current` (the target user's record as the snapshot read it) and
-- `values_ok`; each row's JSON text is cast once, in the inner query, and read by values_ok outside it.
-- Binds: target tenant, pair key (in that order).
-- fragment values_ok: validity.values_ok_sql over the columns action, desired, changes
-- fragment changes: `CAST(p.changes AS VARCHAR)`, or `CAST(NULL AS VARCHAR)` to leave them unread
-- fragment where: which rows: inputs' writing-row or whole-record-row condition over alias p (constants)
SELECT *, {{values_ok}} AS values_ok FROM (
    SELECT p.rowid AS _pos, p.pair_key, p.cycle_id, p.change_id, p.source_tenant_id, p.source_object_id,
           p.target_user_id, p.action, {{changes}} AS changes, CAST(p.desired AS VARCHAR) AS desired,
           p.reason, p.mail, p.user_principal_name, CAST(t.attrs AS VARCHAR) AS current
    FROM plan p LEFT JOIN target_users t ON t.tenant = ? AND t.id = p.target_user_id
    WHERE p.pair_key = ? AND p.action <> 'skip' AND {{where}})
