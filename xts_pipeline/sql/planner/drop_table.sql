-- A shared temp table, once the plan and its drift have read it.
-- fragment table: the temp table's name, plan_<cte>
DROP TABLE {{table}}
