"""Dagster's default SQLite run and event-log storage, with one pooled engine per database file.

Same files, same schema, same classes underneath: the UI (`dagster dev`, default storage) and `xts sync`
(this storage) read and write the one history in $DAGSTER_HOME. What differs is how a write reaches the file.
Dagster 1.13's SQLite storages build a new SQLAlchemy engine and open and close a connection for every call
(`poolclass=NullPool`), so each event of a run costs an engine, an open, a commit and a WAL checkpoint on
close: about 20-40 ms per event on a 2-core machine, and a no-change demo cycle writes ~500 events. Here
each file keeps one engine with one pooled connection, and commits use `PRAGMA synchronous=NORMAL`, which
SQLite documents as safe from corruption in WAL mode (a power cut may lose the last commits, never the file).

Engines are per process (a forked child opens its own) and the least recently used run shards are closed,
so a long cycle keeps a few files open, not one per run.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

MODULE = __name__
OPEN_RUN_SHARDS = 4  # run shards kept open per process besides the index shard


def _engine(conn_string: str) -> Engine:
    engine = create_engine(conn_string, poolclass=QueuePool, pool_size=1, max_overflow=4,
                           connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA synchronous=NORMAL")

    return engine


class _Engines:
    """conn string -> engine for this process, the least recently used beyond `keep` disposed."""

    def __init__(self, keep: int) -> None:
        self._keep, self._pid, self._lock = keep, os.getpid(), threading.Lock()
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._pinned: set[str] = set()

    def get(self, conn_string: str, *, pinned: bool = False) -> tuple[Engine, bool]:
        """(engine, created now)."""
        with self._lock:
            if self._pid != os.getpid():  # a forked child never shares its parent's sqlite connections
                self._engines, self._pid = OrderedDict(), os.getpid()
            engine = self._engines.get(conn_string)
            if engine is not None:
                self._engines.move_to_end(conn_string)
                return engine, False
            engine = self._engines[conn_string] = _engine(conn_string)
            if pinned:
                self._pinned.add(conn_string)
            unpinned = [k for k in self._engines if k not in self._pinned]
            for old in unpinned[: max(0, len(unpinned) - self._keep)]:
                self._engines.pop(old).dispose()
            return engine, True

    def dispose(self) -> None:
        with self._lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """SqliteEventLogStorage (one file per run plus the index) with a pooled engine per file."""

    def __init__(self, base_dir: str, inst_data: Any = None) -> None:
        self._engines = _Engines(OPEN_RUN_SHARDS)
        super().__init__(base_dir, inst_data=inst_data)

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Any) -> PooledSqliteEventLogStorage:  # type: ignore[override]
        return cls(inst_data=inst_data, **config_value)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine, _ = self._engines.get(self.conn_string_for_shard(shard), pinned=shard == INDEX_SHARD_NAME)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def dispose(self) -> None:
        super().dispose()
        self._engines.dispose()


class PooledSqliteRunStorage(SqliteRunStorage):
    """SqliteRunStorage (history/runs.db) with one pooled engine."""

    def __init__(self, conn_string: str, inst_data: Any = None) -> None:
        self._engines = _Engines(0)
        super().__init__(conn_string, inst_data=inst_data)

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Any) -> PooledSqliteRunStorage:  # type: ignore[override]
        return cls.from_local(inst_data=inst_data, **config_value)

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        engine, _ = self._engines.get(self._conn_string, pinned=True)
        with engine.connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        getattr(super(), "dispose", lambda: None)()
        self._engines.dispose()


def storage_overrides(home: str, config: dict[str, Any]) -> dict[str, Any]:
    """Instance overrides that swap in the pooled classes, only where dagster.yaml keeps the default storage.

    A configured `storage`, `run_storage` or `event_log_storage` (Postgres, another directory) is what the
    UI reads, so it is left alone.
    """
    if any(config.get(k) for k in ("storage", "run_storage", "event_log_storage", "schedule_storage")):
        return {}
    history = os.path.join(home, "history")
    return {
        "run_storage": {"module": MODULE, "class": "PooledSqliteRunStorage", "config": {"base_dir": history}},
        "event_log_storage": {"module": MODULE, "class": "PooledSqliteEventLogStorage",
                              "config": {"base_dir": os.path.join(history, "runs")}},
        "schedule_storage": {"module": "dagster._core.storage.schedules", "class": "SqliteScheduleStorage",
                             "config": {"base_dir": os.path.join(home, "schedules")}},
    }
