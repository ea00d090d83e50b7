-- The pair's writes a killed run left in flight (sent, or about to be, with no recorded outcome).
SELECT change_id, op_kind, source_object_id, target_user_id, mail, lookup_filter
FROM write_journal WHERE pair_key = $pair_key AND state = 'in_flight'
