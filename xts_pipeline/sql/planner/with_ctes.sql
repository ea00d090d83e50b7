-- The plan pipeline's CTE list, some of them read from the shared temp tables (planner.plan_ctes).
-- fragment ctes: the CTEs the statement needs, each `name AS (...)`, separated by commas
WITH
{{ctes}}
