-- The new drift rows of a pair.
-- fragment query: the drift query (planner.DRIFT_SQL, or its CTEs over the shared temp tables and DRIFT_SELECT)
INSERT INTO plan_drift {{query}}
