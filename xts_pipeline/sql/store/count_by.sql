-- Counts of a table's rows grouped by one of its columns (store.count_by).
-- fragment column: the column, checked against the schema (store.columns)
-- fragment table: the table, one of schema.sql's
-- fragment where: the caller's condition (code, its values bound as parameters)
SELECT {{column}}, count(*) FROM {{table}} WHERE {{where}} GROUP BY 1 ORDER BY 1
