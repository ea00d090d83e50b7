-- Give a lease up, only if it is still ours.
DELETE FROM leases WHERE name = $name AND owner = $owner
