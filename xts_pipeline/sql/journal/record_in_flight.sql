-- One write op journaled as in flight, committed before the writer sends it (a retried op starts again).
INSERT INTO write_journal
VALUES ($pair_key, $cycle_id, $change_id, $op_kind, $source_object_id, $target_user_id, $mail, $lookup_filter,
        'in_flight', now(), NULL)
ON CONFLICT (pair_key, change_id) DO UPDATE SET state = 'in_flight', started_at = now(), finished_at = NULL
