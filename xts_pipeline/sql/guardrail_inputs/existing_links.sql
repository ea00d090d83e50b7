-- How many target users the pair already links (not deleted). Binds: pair key.
SELECT count(*) FROM links WHERE pair_key = ? AND coalesce(state, '') <> 'deleted'
