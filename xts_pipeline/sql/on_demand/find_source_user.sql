-- The source user `xts provision` names ($w: an object id, UPN or mail, any case) in the raw users of
-- tenant $t.
SELECT id, CAST(data AS VARCHAR) FROM raw_users WHERE tenant = $t AND (id = $w
  OR lower(data->>'userPrincipalName') = lower($w) OR lower(coalesce(data->>'mail', '')) = lower($w))
ORDER BY id LIMIT 1
