-- The store's clock: when a snapshot started reading (the planner's stale-snapshot guard).
SELECT CAST(now() AS TIMESTAMP)
