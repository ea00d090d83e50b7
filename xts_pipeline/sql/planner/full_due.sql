-- Whether the daily full re-diff is due: the last full plan is more than N hours before now.
SELECT CAST(? AS TIMESTAMP) - ? > INTERVAL (?) HOUR
