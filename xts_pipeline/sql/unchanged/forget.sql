-- A pair run starts: its old fingerprint is void; keep the versions of the inputs it reads.
-- Binds: pair key, versions.
INSERT OR REPLACE INTO pair_inputs VALUES (?, ?, NULL, NULL, NULL, NULL)
