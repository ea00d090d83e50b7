-- A pair's old plan, before a new one is computed.
DELETE FROM plan WHERE pair_key = ?
