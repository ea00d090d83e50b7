"""DuckDB staging layer: one file, its schema, and short-lived connections.

DuckDB allows one writer per file across processes, so every connection (read or write) is taken
under a file lock next to the database and released as soon as the `with` block ends. Callers must
never hold a connection while they wait on the network: fetch a page, then open, write, close.

The schema is data: sql/schema.sql holds every table once, the module that owns (writes) it, and a
description of each column; this module runs it, then sql/migrations.sql, on a file's first use.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import duckdb
from filelock import FileLock, Timeout

from xts_pipeline import queries

LOCK_TIMEOUT_S = float(os.environ.get("XTS_DUCKDB_LOCK_TIMEOUT", "900"))
# DuckDB takes up to 80 % of RAM by default; a cap makes big plans spill to disk instead, which keeps a
# 100k-user cycle under 1 GB. Insertion order is never relied on (every read that cares has ORDER BY).
DUCKDB_CONFIG = {"memory_limit": os.environ.get("XTS_DUCKDB_MEMORY", "1GB"), "preserve_insertion_order": False}


@dataclass(frozen=True)
class Column:
    """One column of the schema, with the description its `-- comment` gives it in schema.sql."""

    name: str
    type: str
    description: str


@dataclass(frozen=True)
class Table:
    """One table of schema.sql: its DDL, the one module that writes it, what it is for, its columns."""

    name: str
    owner: str
    doc: str
    ddl: str
    columns: tuple[Column, ...]


_CREATE = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+) \($")
# A table with the columns of one defined above it (their descriptions too), without its keys.
_COPY = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+) AS SELECT \* FROM (\w+) LIMIT 0$")
_COLUMN = re.compile(r"^\s+(\w+) ([A-Z][A-Z0-9_]*)\b[^-]*?,?\s*--\s*(\S.*)$")


def _column(table: str, line: str) -> Column:
    m = _COLUMN.match(line)
    if m is None:
        raise ValueError(f"schema.sql: {table}: column line without a `-- description`: {line.strip()}")
    return Column(m.group(1), m.group(2), m.group(3).strip())


def parse_schema(text: str) -> dict[str, Table]:
    """schema.sql's tables by name; a column without a description, or a table without an owner, is an error."""
    tables: dict[str, Table] = {}
    for stmt in re.split(r";[ \t]*$", text, flags=re.MULTILINE):
        raw = stmt.strip().splitlines()
        at = next((i for i, line in enumerate(raw) if _CREATE.match(line) or _COPY.match(line)), None)
        if at is None:
            continue
        first_note = at  # the table's notes are the `--` lines right above it, up to a blank line (not a header)
        while first_note > 0 and raw[first_note - 1].strip().startswith("--"):
            first_note -= 1
        notes = [line.strip().removeprefix("--").strip() for line in raw[first_note:at]]
        lines = [line for line in raw[at:] if line.strip()]  # the statement itself, from its CREATE line
        copy = _COPY.match(lines[0])
        name = (copy or _CREATE.match(lines[0])).group(1)  # type: ignore[union-attr]
        owners = [n.removeprefix("owner:").strip() for n in notes if n.startswith("owner:")]
        if len(owners) != 1 or name in tables:
            raise ValueError(f"schema.sql: table {name} needs exactly one definition and one `-- owner:` line")
        if copy is not None:
            if copy.group(2) not in tables:
                raise ValueError(f"schema.sql: {name} copies {copy.group(2)}, which is not defined above it")
            columns = tables[copy.group(2)].columns
        else:
            columns = tuple(_column(name, line) for line in lines[1:-1]
                            if not line.strip().startswith("PRIMARY KEY"))
        doc = " ".join(n for n in notes if not n.startswith("owner:"))
        tables[name] = Table(name, owners[0], doc, "\n".join(lines), columns)
    return tables


SCHEMA_TABLES = parse_schema(queries.load("schema"))
SCHEMA: tuple[str, ...] = tuple(t.ddl for t in SCHEMA_TABLES.values())
MIGRATIONS: tuple[str, ...] = queries.statements("migrations")
TABLES = tuple(SCHEMA_TABLES)

_locks: dict[str, FileLock] = {}
_locks_guard = threading.Lock()
_initialised: set[str] = set()


class StoreError(RuntimeError):
    """The staging database could not be opened; the message names the file and what to do."""


def default_path() -> Path:
    """`XTS_DUCKDB` or `<DAGSTER_HOME or ./dagster_home>/xts.duckdb`: next to the instance that uses it."""
    if os.environ.get("XTS_DUCKDB"):
        return Path(os.environ["XTS_DUCKDB"]).absolute()
    home = os.environ.get("DAGSTER_HOME") or str(Path.cwd() / "dagster_home")
    return Path(home).absolute() / "xts.duckdb"


def _lock_for(path: Path) -> FileLock:
    key = str(path)
    with _locks_guard:
        if key not in _locks:
            _locks[key] = FileLock(key + ".lock", thread_local=False)
        return _locks[key]


def _make_private(db: Path) -> None:
    """Mode 0600 for a new staging file: it holds every synced tenant's user data (names, mails, phones).

    DuckDB refuses to open a pre-created empty file, so the mode is set right after it creates one.
    """
    with suppress(OSError):
        os.chmod(db, 0o600)


def _open(db: Path) -> duckdb.DuckDBPyConnection:
    """duckdb.connect, waiting while another program (a `duckdb` shell, a notebook) holds DuckDB's own lock.

    Our file lock serialises the pipeline and `xts log`/`xts status`; a reader that opens the file
    directly takes DuckDB's lock instead ("Could not set lock on file"). The pipeline then waits and
    retries, up to LOCK_TIMEOUT_S, instead of failing the run.
    """
    deadline = time.monotonic() + LOCK_TIMEOUT_S
    delay = 0.05
    while True:
        try:
            con = duckdb.connect(str(db), config=DUCKDB_CONFIG)
            # No progress bar (a session setting): DuckDB draws one on stdout for a query over ~2 s, which
            # would land in run logs and the CLI's output.
            con.execute("SET enable_progress_bar = false")
            return con
        except duckdb.Error as exc:
            locked = "lock" in str(exc).lower()
            if not locked or time.monotonic() >= deadline:
                hint = ("another program keeps it open; close it (read with `xts log` / `xts status`, which never "
                        "block a run)" if locked else "check the path and permissions")
                raise StoreError(f"cannot open staging database {db}: {exc}; {hint}") from exc
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


@contextmanager
def connect(path: str | Path | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the database under the cross-process lock; the schema is created on first use.

    Re-entrant within a thread of one process, so a helper may open a connection inside another.
    """
    db = Path(path).absolute() if path else default_path()
    db.parent.mkdir(parents=True, exist_ok=True)
    lock = _lock_for(db)
    try:
        lock.acquire(timeout=LOCK_TIMEOUT_S)
    except Timeout as exc:
        raise StoreError(
            f"staging database {db} stayed locked for {LOCK_TIMEOUT_S:.0f}s by another process; "
            f"wait for the running sync to finish or remove a stale {db}.lock"
        ) from exc
    try:
        created = not db.exists()
        con = _open(db)
        if created:
            _make_private(db)
        try:
            if str(db) not in _initialised:
                _create(con)
                _initialised.add(str(db))
            yield con
        finally:
            con.close()
    finally:
        lock.release()


def init(path: str | Path | None = None) -> None:
    """Create every table; safe to call repeatedly."""
    _initialised.discard(str(Path(path).absolute() if path else default_path()))
    with connect(path):
        pass


def _literal(text: str) -> str:
    """A SQL string literal of our own schema text (COMMENT ON takes no bound parameter)."""
    return "'" + text.replace("'", "''") + "'"


def _create(con: duckdb.DuckDBPyConnection) -> None:
    """Schema, migrations and comments in one transaction: all or nothing, and one commit instead of ~40."""
    con.execute("BEGIN")
    try:
        for stmt in (*SCHEMA, *MIGRATIONS):
            con.execute(stmt)
        _comment(con)
        con.execute("COMMIT")
    except BaseException:
        with suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise


def _comment(con: duckdb.DuckDBPyConnection) -> None:
    """Store schema.sql's descriptions as DuckDB comments, so a `duckdb` shell shows them too.

    Only the ones that differ from what the file holds are written: a file opened again costs one read.
    """
    have_tables = dict(con.execute(queries.load("store/table_comments")).fetchall())
    have_columns = {(t, c): text for t, c, text in con.execute(queries.load("store/column_comments")).fetchall()}
    stmts = [f"COMMENT ON TABLE {t.name} IS {_literal(t.doc)}"
             for t in SCHEMA_TABLES.values() if t.name in have_tables and have_tables[t.name] != t.doc]
    stmts += [f"COMMENT ON COLUMN {t.name}.{c.name} IS {_literal(c.description)}"
              for t in SCHEMA_TABLES.values() for c in t.columns
              if (t.name, c.name) in have_columns and have_columns[t.name, c.name] != c.description]
    if stmts:
        con.execute(";\n".join(stmts))


def _sql_of(stmt: str) -> str:
    """A statement without its leading `--` comment lines."""
    return "\n".join(line for line in stmt.splitlines() if not line.lstrip().startswith("--")).strip()


def ensure(con: duckdb.DuckDBPyConnection, *tables: str) -> None:
    """Create `tables` from schema.sql, and add their migrated columns, in a connection store.connect did not
    open (a bare in-memory one, or a table someone made in an older shape)."""
    for name in tables:
        con.execute(SCHEMA_TABLES[name].ddl)
        for stmt in MIGRATIONS:
            if _sql_of(stmt).startswith(f"ALTER TABLE {name} "):
                con.execute(stmt)


def columns(table: str) -> tuple[str, ...]:
    """The columns schema.sql gives `table` (the whitelist for a column name that must vary)."""
    if table not in SCHEMA_TABLES:
        raise ValueError(f"{table!r} is not a table of the store (see xts_pipeline/sql/schema.sql)")
    return tuple(c.name for c in SCHEMA_TABLES[table].columns)


def descriptions(table: str) -> dict[str, str]:
    """Column name -> its description in schema.sql, for Dagster's column schema."""
    columns(table)
    return {c.name: c.description for c in SCHEMA_TABLES[table].columns}


def count(con: duckdb.DuckDBPyConnection, table: str, column: str, value: object) -> int:
    """How many `table` rows have `value` in `column` (a tenant, a pair key), both names checked against the schema."""
    if column not in columns(table):
        raise ValueError(f"{column!r} is not a column of {table} (see xts_pipeline/sql/schema.sql)")
    return int(con.execute(queries.render("store/count", table=table, column=column), [value]).fetchone()[0])


def count_by(con: duckdb.DuckDBPyConnection, table: str, column: str, where: str = "TRUE",
             params: list | None = None) -> dict[str, int]:
    """Counts of `table` rows grouped by `column`, both checked against the schema; `where` is code, values bound."""
    if column not in columns(table):
        raise ValueError(f"{column!r} is not a column of {table} (see xts_pipeline/sql/schema.sql)")
    rows = con.execute(queries.render("store/count_by", column=column, table=table, where=where),
                       params or []).fetchall()
    return {str(k): int(v) for k, v in rows}


def column_schema(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    """(name, type) of each column as the file has it, for Dagster's column-schema metadata."""
    return [(r[0], r[1]) for r in con.execute(queries.load("store/column_schema"), {"table": table}).fetchall()]


def get_watermark(con: duckdb.DuckDBPyConnection, name: str) -> tuple[object, str | None] | None:
    rows = con.execute(queries.load("store/get_watermark"), {"name": name}).fetchall()
    return (rows[0][0], rows[0][1]) if rows else None


def verified_domains(con: duckdb.DuckDBPyConnection, tenant: str) -> set[str]:
    """The tenant's verified domains, lower-case; empty when they were never read (trust nothing then)."""
    return {r[0] for r in con.execute(queries.load("store/verified_domains"), {"tenant": tenant}).fetchall()}


def set_watermark(con: duckdb.DuckDBPyConnection, name: str, value: object, info: str | None = None) -> None:
    con.execute(queries.load("store/set_watermark"), {"name": name, "value": value, "info": info})
