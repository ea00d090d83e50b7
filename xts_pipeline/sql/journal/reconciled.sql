-- Every write of the pair still in flight has been looked up in the target (journal.reconcile).
UPDATE write_journal SET state = 'reconciled', finished_at = now()
WHERE pair_key = $pair_key AND state = 'in_flight'
