-- Each source tenant's staged member rows, hashed (external users are never a pair's source users).
-- $sources: the source tenants.
-- fragment staged_external: external.external_sql_over staged_users s's columns
CREATE OR REPLACE TEMP TABLE fp_staged AS
SELECT s.tenant, md5(CAST(s AS VARCHAR)) AS h FROM staged_users s
WHERE list_contains($sources, s.tenant) AND NOT {{staged_external}}
