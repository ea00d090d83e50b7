-- `xts log`'s rejected rows of one source tenant ($t), filtered by user.
SELECT id, user_principal_name, reasons, rejected_at FROM rejected_users
WHERE tenant = $t AND ($like IS NULL OR lower(coalesce(user_principal_name, '')) LIKE $like
      OR id = $user) ORDER BY id LIMIT $limit
