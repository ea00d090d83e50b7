-- Forget the pair's holds by these guardrails (a list of check names), before their new ones are written.
-- Binds: pair key, check names.
DELETE FROM plan_exclusions WHERE pair_key = ? AND list_contains(?, check_name)
