-- A write's outcome, in the transaction that logs it: it is no longer in flight.
UPDATE write_journal SET state = $state, target_user_id = coalesce($target_user_id, target_user_id),
       finished_at = now()
WHERE pair_key = $pair_key AND change_id = $change_id
