-- A small round's new rows (extract/round_rows, in its fragment round_rows) into a temp table: they then
-- replace the stored ones by delete + insert (see extract._apply_spool).
-- fragment round_rows: the query of extract/round_rows (the round's new rows)
CREATE OR REPLACE TEMP TABLE raw_round AS {{round_rows}}
