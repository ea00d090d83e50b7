-- The run's desired rows, from the Arrow table registered as desired_tbl.
INSERT INTO desired_users SELECT $pair, $source_tid, sid, upn, mail, dn, en, CAST(dc AS JSON), CAST(du AS JSON), now()
FROM desired_tbl
