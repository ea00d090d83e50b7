-- A full recomputation of a pair's desired state: its rows and its mapping errors go first.
DELETE FROM desired_users WHERE pair_key = ?;
DELETE FROM desired_errors WHERE pair_key = ?;
