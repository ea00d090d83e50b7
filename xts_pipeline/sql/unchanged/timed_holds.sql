-- How many of the pair's users are held by guardrails whose hold time alone can lift. Binds: pair key, names.
SELECT count(*) FROM plan_exclusions WHERE pair_key = ? AND list_contains(?, check_name)
