-- raw_source_users: the tenant's users as Graph returned them (upn and type pulled out of the JSON).
SELECT id, data->>'userPrincipalName' AS upn, data->>'userType' AS user_type
FROM raw_users WHERE tenant = $tenant
