"""The store's schema lives in one file, xts_pipeline/sql/schema.sql: every table once, each with one owner
module that writes it and a description on every column (shown as DuckDB comments and as Dagster's column
schema). Queries are package data (`.sql` files), loaded by name.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from xts_pipeline import queries, store

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_FILE = ROOT / "xts_pipeline" / "sql" / "schema.sql"
_DEFINES = re.compile(r"\bCREATE\s+(?:OR\s+REPLACE\s+)?(TEMP\s+|TEMPORARY\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?"
                      r"(\w+)\s*(?:\(|AS\b)")
_WRITES = re.compile(r"\b(?:INSERT\s+(?:OR\s+REPLACE\s+)?INTO|UPDATE|DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?)\s+(\w+)")
_LOADS = re.compile(r"""queries\.(?:load|render|statements)\(\s*f?["']([\w/{}]+)["'](?:\s*,\s*["'](\w+)["'])?""")
# Writes by a module other than the table's owner, still to be moved behind the owner's functions.
KNOWN_OTHER_WRITERS: set[tuple[str, str]] = set()
_STATEMENT = re.compile(r"\s*(SELECT|WITH|INSERT|UPDATE|DELETE|CREATE)\s")


def _sources() -> list[Path]:
    """The code of the domain and the Dagster layer (the sandbox stands apart: its own SQLite store)."""
    files = []
    for package in ("xts_pipeline", "assets", "checks"):
        for path in sorted((ROOT / package).rglob("*")):
            if path.suffix in (".py", ".sql") and "sandbox" not in path.relative_to(ROOT).parts:
                files.append(path)
    return files


def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def definitions_in(files: list[Path]) -> dict[str, list[str]]:
    """Table name -> every file that defines it (temporary tables are a statement's scratch, not the store's)."""
    out: dict[str, list[str]] = {}
    for path in files:
        for m in _DEFINES.finditer(path.read_text(encoding="utf-8")):
            if not m.group(1):
                out.setdefault(m.group(2), []).append(str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path))
    return out


def test_every_table_is_defined_once_in_schema_sql():
    found = definitions_in(_sources())
    assert set(found) == set(store.TABLES)
    twice = {t: where for t, where in found.items() if where != ["xts_pipeline/sql/schema.sql"]}
    assert not twice, f"tables defined outside schema.sql, or twice: {twice}"


def test_a_second_definition_is_found(tmp_path):
    """The scan above can fail: a module that creates a store table of its own is reported."""
    rogue = tmp_path / "rogue.py"
    rogue.write_text('con.execute("""CREATE TABLE IF NOT EXISTS quarantine (pair_key VARCHAR)""")\n'
                     'con.execute("CREATE OR REPLACE TEMP TABLE plan_x AS SELECT 1")\n')
    found = {t: len(where) for t, where in definitions_in([SCHEMA_FILE, rogue]).items()}
    assert found["quarantine"] == 2 and "plan_x" not in found
    with pytest.raises(ValueError, match="exactly one definition"):
        store.parse_schema(SCHEMA_FILE.read_text() + "\n-- owner: x\nCREATE TABLE IF NOT EXISTS leases (\n"
                           "    name VARCHAR  -- a name\n);\n")


def test_every_column_has_a_description_and_every_table_an_owner():
    for table in store.SCHEMA_TABLES.values():
        assert table.owner.startswith("xts_pipeline."), table.name
        assert table.doc, f"{table.name}: say what the table is for above its CREATE TABLE"
        assert all(c.description for c in table.columns), table.name
    with pytest.raises(ValueError, match="without a `-- description`"):
        store.parse_schema("-- owner: xts_pipeline.x\nCREATE TABLE IF NOT EXISTS t (\n    a VARCHAR,\n"
                           "    b VARCHAR  -- described\n);\n")


def test_the_file_has_the_columns_schema_sql_describes_and_its_comments(tmp_path):
    """Migrations and schema.sql agree (a column added by a migration only would go undescribed), and
    the descriptions are stored as DuckDB comments for whoever opens the file with `duckdb`."""
    with store.connect(tmp_path / "x.duckdb") as con:
        for name, table in store.SCHEMA_TABLES.items():
            assert [c for c, _ in store.column_schema(con, name)] == [c.name for c in table.columns], name
        comments = con.execute("SELECT table_name, column_name, comment FROM duckdb_columns() "
                               "WHERE database_name = current_database() AND NOT internal").fetchall()
        tables = dict(con.execute("SELECT table_name, comment FROM duckdb_tables() "
                                  "WHERE database_name = current_database() AND NOT internal").fetchall())
    assert {(t, c): text for t, c, text in comments} == {
        (t.name, c.name): c.description for t in store.SCHEMA_TABLES.values() for c in t.columns}
    assert tables == {t.name: t.doc for t in store.SCHEMA_TABLES.values()}


def test_an_older_file_gains_the_columns_and_comments(tmp_path):
    """A file made before quarantine's back-off columns (and before comments) is brought up to date on open."""
    import duckdb

    db = tmp_path / "old.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE quarantine (pair_key VARCHAR, since TIMESTAMP, reason VARCHAR, "
                    "released_at TIMESTAMP, failures BIGINT)")
    with store.connect(db) as con:
        cols = [c for c, _ in store.column_schema(con, "quarantine")]
        comment = con.execute("SELECT comment FROM duckdb_columns() WHERE table_name = 'quarantine' "
                              "AND column_name = 'attempts'").fetchone()[0]
    assert cols == list(store.columns("quarantine"))
    assert comment == store.descriptions("quarantine")["attempts"]


def _loaded_queries(files: list[Path]) -> dict[Path, str]:
    """Each `.sql` file some module loads -> that module (a query belongs to the module that runs it)."""
    out: dict[Path, str] = {}
    for path in files:
        if path.suffix != ".py":
            continue
        for name, package in _LOADS.findall(path.read_text(encoding="utf-8")):
            for sql in (ROOT / (package or "xts_pipeline") / "sql").glob(re.sub(r"\{[^}]*\}", "*", name) + ".sql"):
                out[sql] = _module(path)
    return out


def writers(files: list[Path]) -> dict[str, set[str]]:
    """Table name -> the modules whose code (or whose loaded `.sql` files) write it."""
    loaded = _loaded_queries(files)
    out: dict[str, set[str]] = {}
    for path in files:
        if path in (SCHEMA_FILE, SCHEMA_FILE.with_name("migrations.sql")):
            continue  # the store's own DDL and migrations
        module = loaded.get(path) if path.suffix == ".sql" else _module(path)
        if module is None:
            continue
        for table in _WRITES.findall(path.read_text(encoding="utf-8")):
            if table in store.SCHEMA_TABLES:
                out.setdefault(table, set()).add(module)
    return out


def test_each_table_is_written_by_its_owner_only():
    others = {(t, m) for t, mods in writers(_sources()).items() for m in mods
              if m != store.SCHEMA_TABLES[t].owner}
    assert others <= KNOWN_OTHER_WRITERS, f"write the table through its owner's functions: {others - KNOWN_OTHER_WRITERS}"


def test_every_shipped_query_is_loaded_and_every_load_has_its_file():
    """A `.sql` file nothing loads is dead; a load without its file fails at run time."""
    files = _sources()
    loaded = _loaded_queries(files)
    shipped = {p for p in files if p.suffix == ".sql"} - {SCHEMA_FILE, SCHEMA_FILE.with_name("migrations.sql")}
    assert shipped - set(loaded) == set(), "no module loads these"
    for path in files:
        if path.suffix == ".py":
            for name, package in _LOADS.findall(path.read_text(encoding="utf-8")):
                if "{" not in name:
                    assert queries.load(name, package or "xts_pipeline")


def test_a_query_name_is_checked():
    with pytest.raises(queries.QueryNotFound):
        queries.load("lease/no_such_query")
    with pytest.raises(queries.QueryNotFound):
        queries.load("../store")


def test_a_fragment_is_only_what_the_query_declares():
    """render fills the placeholders a file's header declares, all of them and nothing else, and no part ends
    a statement: the one way SQL text varies, and it cannot smuggle in a second query."""
    text = queries.render("staging/precheck_text", column="job_title", max_length="128", no_control="x*")
    assert text.startswith("(job_title IS NULL OR") and "--" not in text and "{{" not in text
    assert queries.fragments("staging/precheck_text") == {"column", "max_length", "no_control"}
    with pytest.raises(ValueError, match="declares fragments"):
        queries.render("staging/precheck_text", column="job_title", max_length="128")
    with pytest.raises(ValueError, match="declares fragments"):
        queries.render("staging/precheck_text", column="a", max_length="1", no_control="x", extra="y")
    with pytest.raises(ValueError, match="may not contain"):
        queries.render("staging/precheck_text", column="a; DROP TABLE links", max_length="1", no_control="x")


def test_a_copied_table_has_its_originals_columns_and_descriptions(tmp_path):
    """target_users_load is defined from target_users: the same columns and descriptions, without its key."""
    load, users = store.SCHEMA_TABLES["target_users_load"], store.SCHEMA_TABLES["target_users"]
    assert load.columns == users.columns and load.owner == "xts_pipeline.extract"
    with store.connect(tmp_path / "x.duckdb") as con:
        assert store.column_schema(con, "target_users_load") == store.column_schema(con, "target_users")
        keys = con.execute("SELECT count(*) FROM duckdb_constraints() WHERE table_name = 'target_users_load'").fetchone()
    assert keys == (0,)
    with pytest.raises(ValueError, match="not defined above it"):
        store.parse_schema("-- owner: xts_pipeline.x\nCREATE TABLE IF NOT EXISTS t AS SELECT * FROM nowhere LIMIT 0;\n")


def inline_sql(path: Path) -> list[int]:
    """Lines of `path` where a string literal (or f-string) starts a SQL statement."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    patterns = {id(a) for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "compile"
                for a in n.args}  # re.compile("CREATE TABLE ..."): a pattern over SQL, not a query
    found = []
    for node in ast.walk(tree):
        if id(node) in patterns:
            continue
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        else:
            continue
        if _STATEMENT.match(text):
            found.append(node.lineno)
    return sorted(set(found))


def test_queries_are_sql_files_not_python_strings(tmp_path):
    """Every module runs its queries from `.sql` files (queries.load / queries.render), none from a string."""
    rogue = tmp_path / "rogue.py"
    rogue.write_text('con.execute(f"SELECT {col} FROM plan")\nMSG = "Selected users"\n'
                     'R = re.compile(r"CREATE TABLE (\\w+)")\n')
    assert inline_sql(rogue) == [1]
    found = {_module(p): inline_sql(p) for p in _sources() if p.suffix == ".py"}
    offenders = {m: lines for m, lines in found.items() if lines}
    assert not offenders, f"move these queries into .sql files: {offenders}"


def test_render_refuses_a_fragment_with_a_second_statement():
    """A fragment is SQL text from code constants; one that ends a statement could smuggle in a second one."""
    with pytest.raises(ValueError, match="may not contain"):
        queries.render("planner/read_cte", cte="users;\nDROP TABLE plan")
    with pytest.raises(ValueError, match="may not contain"):
        queries.render("planner/read_cte", cte="(SELECT ';' AS x) t; DROP TABLE plan -- ;")
    # a ';' inside a literal or a comment separates nothing (the plan's reasons and notes have some)
    assert queries.render("planner/read_cte", cte="(SELECT 'a; b' AS r -- c; d\n) t") == \
        "SELECT * FROM (SELECT 'a; b' AS r -- c; d\n) t"
    with pytest.raises(ValueError, match="declares fragments"):
        queries.render("planner/read_cte", cte="d", other="x")
