-- What the stored snapshot holds: users, linked users, guests (B2B by userType or by invitation).
SELECT count(*), count(link_source_object_id),
       count(*) FILTER (WHERE user_type = 'Guest' OR creation_type = 'Invitation')
FROM target_users WHERE tenant = ?
