-- How many rows of a table have one value in one of its key columns (store.count).
-- fragment table: the table, one of schema.sql's
-- fragment column: the column, checked against the schema (store.columns)
SELECT count(*) FROM {{table}} WHERE {{column}} = ?
