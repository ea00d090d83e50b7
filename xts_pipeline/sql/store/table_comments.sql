-- The table comments stored in the file, to set only those that differ from schema.sql.
SELECT table_name, comment FROM duckdb_tables() WHERE schema_name = 'main' AND database_name = current_database() AND NOT internal
