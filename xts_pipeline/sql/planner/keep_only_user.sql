-- On-demand provisioning of one user: the plan keeps the row of $user (object id, UPN or mail) only.
DELETE FROM plan WHERE pair_key = $pair AND NOT (coalesce(source_object_id, '') = $user
  OR lower(coalesce(user_principal_name, '')) = lower($user)
  OR lower(coalesce(mail, '')) = lower($user))
