-- One CTE the plan and its drift share, computed once into a temp table (planner.SHARED_CTES).
-- fragment table: the temp table's name, plan_<cte>
-- fragment query: the CTEs it needs and a read of the CTE
CREATE OR REPLACE TEMP TABLE {{table}} AS {{query}}
