-- The temp table of a small round's rows, once they replaced the stored ones.
DROP TABLE raw_round
