-- The users whose last event in the round (the spooled Parquet file $spool) removes them.
DELETE FROM raw_users WHERE tenant = $tenant AND id IN (
  SELECT id FROM read_parquet($spool) GROUP BY id HAVING arg_max(removed, seq))
