-- How many of the pair's journaled writes are not done (in flight, failed or reconciled). Binds: pair key.
SELECT count(*) FROM write_journal WHERE pair_key = ? AND state <> 'done'
