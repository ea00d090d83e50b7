-- After keep_only_user: the drift of the users the plan still has.
DELETE FROM plan_drift WHERE pair_key = $pair AND source_object_id NOT IN
  (SELECT source_object_id FROM plan WHERE pair_key = $pair)
