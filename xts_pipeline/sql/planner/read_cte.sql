-- Every row of one CTE of the plan pipeline.
-- fragment cte: the CTE's name (planner.SHARED_CTES)
SELECT * FROM {{cte}}
