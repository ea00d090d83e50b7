-- The pair's plan per action, the held changes left out (`xts sync --dry-run`). Binds: pair key,
-- the held change ids.
SELECT action, count(*) FROM plan WHERE pair_key = ?
AND change_id NOT IN (SELECT unnest(CAST(? AS VARCHAR[]))) GROUP BY 1
