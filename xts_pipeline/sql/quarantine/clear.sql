-- A pair's quarantine row, removed before its new state is saved (one row per pair).
DELETE FROM quarantine WHERE pair_key = $pair_key
