-- The column comments stored in the file, to set only those that differ from schema.sql.
SELECT table_name, column_name, comment FROM duckdb_columns()
WHERE schema_name = 'main' AND database_name = current_database() AND NOT internal
