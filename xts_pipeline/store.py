"""DuckDB staging layer: one file, its schema, and short-lived connections.

DuckDB allows one writer per file across processes, so every connection (read or write) is taken
under a file lock next to the database and released as soon as the `with` block ends. Callers must
never hold a connection while they wait on the network: fetch a page, then open, write, close.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import duckdb
from filelock import FileLock, Timeout

LOCK_TIMEOUT_S = float(os.environ.get("XTS_DUCKDB_LOCK_TIMEOUT", "900"))
# DuckDB takes up to 80 % of RAM by default; a cap makes big plans spill to disk instead, which keeps a
# 100k-user cycle under 1 GB. Insertion order is never relied on (every read that cares has ORDER BY).
DUCKDB_CONFIG = {"memory_limit": os.environ.get("XTS_DUCKDB_MEMORY", "1GB"), "preserve_insertion_order": False}

SCHEMA: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS delta_cursors (
        tenant VARCHAR PRIMARY KEY, delta_link VARCHAR, updated_at TIMESTAMP, full_sync_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS raw_users (
        tenant VARCHAR, id VARCHAR, data JSON, seen_cycle VARCHAR, updated_at TIMESTAMP,
        PRIMARY KEY (tenant, id))""",
    """CREATE TABLE IF NOT EXISTS source_group_members (
        tenant VARCHAR, group_ref VARCHAR, group_id VARCHAR, member_id VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS staged_users (
        tenant VARCHAR, id VARCHAR, user_principal_name VARCHAR, mail VARCHAR, display_name VARCHAR,
        user_type VARCHAR, creation_type VARCHAR, account_enabled BOOLEAN, attrs JSON,
        PRIMARY KEY (tenant, id))""",
    """CREATE TABLE IF NOT EXISTS rejected_users (
        tenant VARCHAR, id VARCHAR, user_principal_name VARCHAR, reasons VARCHAR, data JSON,
        rejected_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS target_users (
        tenant VARCHAR, id VARCHAR, user_principal_name VARCHAR, mail VARCHAR, display_name VARCHAR,
        user_type VARCHAR, creation_type VARCHAR, external_user_state VARCHAR, account_enabled BOOLEAN,
        link_source_tenant_id VARCHAR, link_source_object_id VARCHAR, link_sync_config VARCHAR,
        attrs JSON, PRIMARY KEY (tenant, id))""",
    # Pages of a target read land here first, then replace target_users in one transaction.
    """CREATE TABLE IF NOT EXISTS target_users_load (
        tenant VARCHAR, id VARCHAR, user_principal_name VARCHAR, mail VARCHAR, display_name VARCHAR,
        user_type VARCHAR, creation_type VARCHAR, external_user_state VARCHAR, account_enabled BOOLEAN,
        link_source_tenant_id VARCHAR, link_source_object_id VARCHAR, link_sync_config VARCHAR, attrs JSON)""",
    """CREATE TABLE IF NOT EXISTS target_extensions (
        tenant VARCHAR, short_name VARCHAR, full_name VARCHAR, PRIMARY KEY (tenant, short_name))""",
    """CREATE TABLE IF NOT EXISTS target_groups (
        tenant VARCHAR, id VARCHAR, display_name VARCHAR, group_types JSON, membership_rule VARCHAR,
        membership_rule_processing_state VARCHAR, is_assignable_to_role BOOLEAN, attrs JSON,
        PRIMARY KEY (tenant, id))""",
    """CREATE TABLE IF NOT EXISTS target_group_members (tenant VARCHAR, group_id VARCHAR, member_id VARCHAR)""",
    # Holders of activated directory roles (protected identities for the impersonation guardrail).
    """CREATE TABLE IF NOT EXISTS target_role_members (
        tenant VARCHAR, role_id VARCHAR, role_name VARCHAR, member_id VARCHAR)""",
    # What a target snapshot could not read (e.g. a missing optional permission), shown by the checks.
    """CREATE TABLE IF NOT EXISTS target_notes (tenant VARCHAR, topic VARCHAR, note VARCHAR, noted_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS target_policy (
        tenant VARCHAR, source_tenant VARCHAR, source_tenant_id VARCHAR, is_sync_allowed BOOLEAN,
        policy JSON, read_at TIMESTAMP, PRIMARY KEY (tenant, source_tenant))""",
    """CREATE TABLE IF NOT EXISTS desired_users (
        pair_key VARCHAR, source_tenant_id VARCHAR, source_object_id VARCHAR, user_principal_name VARCHAR,
        mail VARCHAR, display_name VARCHAR, account_enabled BOOLEAN, desired_create JSON,
        desired_update JSON, computed_at TIMESTAMP, PRIMARY KEY (pair_key, source_object_id))""",
    """CREATE TABLE IF NOT EXISTS desired_errors (
        pair_key VARCHAR, source_object_id VARCHAR, user_principal_name VARCHAR, error VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS plan (
        pair_key VARCHAR, cycle_id VARCHAR, change_id VARCHAR, source_tenant_id VARCHAR,
        source_object_id VARCHAR, target_user_id VARCHAR, action VARCHAR, changes JSON, desired JSON,
        reason VARCHAR, match VARCHAR, mail VARCHAR, user_principal_name VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS plan_meta (
        pair_key VARCHAR PRIMARY KEY, cycle_id VARCHAR, fingerprint VARCHAR, sync_allowed BOOLEAN,
        blocked_reason VARCHAR, planned_at TIMESTAMP, full_plan BOOLEAN, full_at TIMESTAMP,
        only_user VARCHAR)""",
    # Users a per-user guardrail holds out of the current plan (owner: xts_pipeline.guardrails.verdicts).
    """CREATE TABLE IF NOT EXISTS plan_exclusions (
        pair_key VARCHAR, cycle_id VARCHAR, change_id VARCHAR, check_name VARCHAR, reason VARCHAR)""",
    # The guarded plan's report: each guardrail's verdict on one plan (owner: xts_pipeline.guardrails.verdicts).
    """CREATE TABLE IF NOT EXISTS guardrail_verdicts (
        pair_key VARCHAR, cycle_id VARCHAR, fingerprint VARCHAR, check_name VARCHAR, passed BOOLEAN,
        stops_pair BOOLEAN, severity VARCHAR, message VARCHAR, approve_command VARCHAR, metadata JSON,
        evaluated_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS links (
        pair_key VARCHAR, source_tenant_id VARCHAR, source_object_id VARCHAR, target_tenant VARCHAR,
        target_user_id VARCHAR, state VARCHAR, linked_at TIMESTAMP, deleted_at TIMESTAMP,
        PRIMARY KEY (pair_key, source_object_id))""",
    # Properties of linked users whose target value differs from what this pair last wrote (plan time).
    """CREATE TABLE IF NOT EXISTS plan_drift (
        pair_key VARCHAR, cycle_id VARCHAR, source_object_id VARCHAR, target_user_id VARCHAR,
        property VARCHAR, applied JSON, target JSON, repaired BOOLEAN)""",
    """CREATE TABLE IF NOT EXISTS write_journal (
        pair_key VARCHAR, cycle_id VARCHAR, change_id VARCHAR, op_kind VARCHAR, source_object_id VARCHAR,
        target_user_id VARCHAR, mail VARCHAR, lookup_filter VARCHAR, state VARCHAR, started_at TIMESTAMP,
        finished_at TIMESTAMP, PRIMARY KEY (pair_key, change_id))""",
    """CREATE TABLE IF NOT EXISTS provisioning_log (
        cycle_id VARCHAR, change_id VARCHAR, pair_key VARCHAR, logged_at TIMESTAMP, action VARCHAR,
        status VARCHAR, operation VARCHAR, source_tenant_id VARCHAR, source_object_id VARCHAR,
        source_upn VARCHAR, target_tenant VARCHAR, target_user_id VARCHAR, modified_properties JSON,
        error_code VARCHAR, error_message VARCHAR, duration_ms DOUBLE, reason VARCHAR,
        hold VARCHAR)""",
    # Incremental steps: the newest raw_users.updated_at a step has consumed, and what it was computed with.
    """CREATE TABLE IF NOT EXISTS watermarks (name VARCHAR PRIMARY KEY, value TIMESTAMP, info VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS approvals (
        pair_key VARCHAR, fingerprint VARCHAR, approved_by VARCHAR, approved_at TIMESTAMP, reason VARCHAR)""",
    # Verified domains of each tenant (GET /organization), read with its users: adoption and exemptions
    # trust a mail only when its domain is verified by the tenant it comes from.
    """CREATE TABLE IF NOT EXISTS tenant_domains (
        tenant VARCHAR, domain VARCHAR, is_default BOOLEAN, read_at TIMESTAMP, PRIMARY KEY (tenant, domain))""",
    """CREATE TABLE IF NOT EXISTS quarantine (
        pair_key VARCHAR, since TIMESTAMP, reason VARCHAR, released_at TIMESTAMP, failures BIGINT)""",
    # One cycle per pair (and one extraction per tenant) at a time: see xts_pipeline/lease.py.
    """CREATE TABLE IF NOT EXISTS leases (
        name VARCHAR PRIMARY KEY, owner VARCHAR, what VARCHAR, host VARCHAR, pid INTEGER, pid_start VARCHAR,
        run_id VARCHAR, acquired_at TIMESTAMP, renewed_at TIMESTAMP, expires_at TIMESTAMP)""",
)

# Columns added after a table first shipped: files made by an older version gain them on open.
MIGRATIONS: tuple[str, ...] = (
    "ALTER TABLE desired_users ADD COLUMN IF NOT EXISTS computed_at TIMESTAMP",
    "ALTER TABLE plan_meta ADD COLUMN IF NOT EXISTS full_plan BOOLEAN",
    "ALTER TABLE plan_meta ADD COLUMN IF NOT EXISTS full_at TIMESTAMP",
    "ALTER TABLE plan_meta ADD COLUMN IF NOT EXISTS only_user VARCHAR",
    # Per property, the value this pair last wrote to the target user (the three-way diff's base).
    "ALTER TABLE links ADD COLUMN IF NOT EXISTS applied JSON",
    "ALTER TABLE plan_meta ADD COLUMN IF NOT EXISTS drift BIGINT",
    # Why a Skipped entry was not written: 'held' (a per-user guardrail) or 'blocked' (the pair was stopped).
    "ALTER TABLE provisioning_log ADD COLUMN IF NOT EXISTS hold VARCHAR",
    """UPDATE provisioning_log SET hold = CASE WHEN starts_with(reason, 'blocked:') THEN 'blocked' ELSE 'held' END
       WHERE hold IS NULL AND status = 'Skipped' AND (starts_with(reason, 'blocked:') OR starts_with(reason, 'held by'))""",
)

TABLES = tuple(stmt.split("EXISTS", 1)[1].split("(", 1)[0].strip() for stmt in SCHEMA)

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
            return duckdb.connect(str(db), config=DUCKDB_CONFIG)
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
                for stmt in (*SCHEMA, *MIGRATIONS):
                    con.execute(stmt)
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


def count_by(con: duckdb.DuckDBPyConnection, table: str, column: str, where: str = "TRUE",
             params: list | None = None) -> dict[str, int]:
    """Counts of `table` rows grouped by `column` (identifiers come from code, values via params)."""
    rows = con.execute(
        f"SELECT {column}, count(*) FROM {table} WHERE {where} GROUP BY 1 ORDER BY 1",  # noqa: S608
        params or [],
    ).fetchall()
    return {str(k): int(v) for k, v in rows}


def column_schema(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    """(name, type) of each column, for Dagster's column-schema metadata."""
    return [(r[0], r[1]) for r in con.execute(f"DESCRIBE {table}").fetchall()]


def get_watermark(con: duckdb.DuckDBPyConnection, name: str) -> tuple[object, str | None] | None:
    rows = con.execute("SELECT value, info FROM watermarks WHERE name = ?", [name]).fetchall()
    return (rows[0][0], rows[0][1]) if rows else None


def verified_domains(con: duckdb.DuckDBPyConnection, tenant: str) -> set[str]:
    """The tenant's verified domains, lower-case; empty when they were never read (trust nothing then)."""
    return {r[0] for r in con.execute("SELECT domain FROM tenant_domains WHERE tenant = ?", [tenant]).fetchall()}


def set_watermark(con: duckdb.DuckDBPyConnection, name: str, value: object, info: str | None = None) -> None:
    con.execute("INSERT OR REPLACE INTO watermarks VALUES (?, ?, ?)", [name, value, info])
