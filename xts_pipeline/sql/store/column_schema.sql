-- (name, type) of each column of one table, in table order (the table name is bound, not formatted).
SELECT column_name, data_type FROM duckdb_columns()
WHERE table_name = $table AND schema_name = 'main' AND database_name = current_database()
ORDER BY column_index
