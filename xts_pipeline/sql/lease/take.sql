-- Take (or re-enter, or take over) one lease; lease.try_acquire decides who may, in the same transaction.
INSERT OR REPLACE INTO leases (name, owner, what, host, pid, pid_start, run_id, acquired_at, renewed_at, expires_at)
VALUES ($name, $owner, $what, $host, $pid, $pid_start, $run_id, $acquired_at, $renewed_at, $expires_at)
