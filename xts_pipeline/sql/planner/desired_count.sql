-- How many users a pair's desired state holds (a big pair takes the planner's fast paths).
SELECT count(*) FROM desired_users WHERE pair_key = ?
