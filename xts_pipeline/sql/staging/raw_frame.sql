-- One tenant's raw Graph users flattened into the columns the staging schema checks (staging.raw_frame).
-- Each document is parsed once: one json_extract_string over every path ($paths), then v[i] per column.
-- $since: only rows updated after it (incremental staging), NULL for every row.
-- fragment columns: the flattened columns, `v[i] AS column` in staging._FLAT's order (account_enabled cast)
-- fragment attrs: `, attrs` to return the whole document as text too, else empty
-- fragment attrs_text: `, CAST(data AS VARCHAR) AS attrs` with attrs, else empty
-- fragment surely_valid: `, <staging/precheck> AS surely_valid` with the pre-check, else empty
SELECT *{{surely_valid}} FROM (
    SELECT id, {{columns}}{{attrs}}
    FROM (SELECT id, json_extract_string(data, $paths) AS v{{attrs_text}}
          FROM raw_users WHERE tenant = $tenant AND (CAST($since AS TIMESTAMP) IS NULL OR updated_at > $since)))
ORDER BY id
