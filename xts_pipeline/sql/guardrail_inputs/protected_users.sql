-- The target users the impersonation guardrail protects (role holders, role-assignable group members), in
-- Graph names. Binds: target tenant, their ids.
SELECT id, display_name AS "displayName", mail, user_principal_name AS "userPrincipalName",
       json_extract_string(attrs, '$.mailNickname') AS "mailNickname",
       json_extract_string(attrs, '$.givenName') AS "givenName",
       json_extract_string(attrs, '$.surname') AS "surname"
FROM target_users WHERE tenant = ? AND id IN (SELECT unnest(?::VARCHAR[]))
