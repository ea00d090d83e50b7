-- Clear a pair's escrow: an apply without failures, or a release, restarts the count.
DELETE FROM quarantine_escrow WHERE pair_key = $pair_key
