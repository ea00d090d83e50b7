-- A small round's new rows (extract/round_rows, in its slot round_rows) into a temp table: they then
-- replace the stored ones by delete + insert (see extract._apply_spool).
CREATE OR REPLACE TEMP TABLE raw_round AS {{round_rows}}
