-- A round over most of the tenant: its new rows (extract/round_rows, in its fragment round_rows) update the
-- stored ones in place.
-- fragment round_rows: the query of extract/round_rows (the round's new rows)
INSERT INTO raw_users {{round_rows}}
ON CONFLICT (tenant, id) DO UPDATE SET data = excluded.data,
seen_cycle = excluded.seen_cycle, updated_at = excluded.updated_at
