-- The stored holder of one lease, in lease.Holder's field order.
SELECT name, owner, what, host, pid, pid_start, run_id, acquired_at, renewed_at, expires_at
FROM leases WHERE name = $name
