-- The new plan rows of a pair.
-- fragment query: the plan query (planner.PLAN_SQL, or its CTEs over the shared temp tables and PLAN_SELECT)
INSERT INTO plan {{query}}
