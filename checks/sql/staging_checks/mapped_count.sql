-- How many of the pair's users were mapped. Binds: pair key.
SELECT count(*) FROM desired_users WHERE pair_key = ?
