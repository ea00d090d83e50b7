-- Per target tenant, once per decision: each target user's row hash (h), lower-cased mail and the address
-- its #EXT# UPN stands for (ext_addr). $targets: the target tenants.
CREATE OR REPLACE TEMP TABLE fp_users AS
SELECT t.tenant, t.id, md5(CAST(t AS VARCHAR)) AS h, lower(t.mail) AS mail_l, CASE WHEN regexp_matches(t.user_principal_name, '^(.+)_([^_#@]+)#EXT#@', 'i') THEN lower(regexp_extract(t.user_principal_name, '^(.+)_([^_#@]+)#EXT#@', 1, 'i')) || '@' || lower(regexp_extract(t.user_principal_name, '^(.+)_([^_#@]+)#EXT#@', 2, 'i')) END AS ext_addr
FROM target_users t WHERE list_contains($targets, t.tenant)
