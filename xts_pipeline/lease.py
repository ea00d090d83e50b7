"""Leases in the store: one sync cycle per pair, one extraction per tenant, at a time.

Why: two cycles of one pair that overlap write every change twice (each applies the same plan), and two
reads of one tenant that overlap collide in the shared staging tables (raw_users' unseen-row sweep,
target_users_load). A lease is a row in `leases` (DuckDB, so every path shares it: `xts sync`, the UI,
schedules, backfills), taken in one transaction and renewed by a heartbeat thread of the process that
keeps it alive.

Names: `pair:<pair key>` for a pair's cycle, `source:<tenant>` for an extraction, `target:<tenant>` for a
target snapshot. The owner is the cycle (the `xts/cycle` tag every run of one cycle carries) or, for a
run outside any cycle (a UI materialization), its run id: runs of the owning cycle re-enter the lease.

A lease held by someone else is taken over only when it is stale: its holder process is gone (same host,
the recorded pid is dead or was reused), it has not been renewed within its TTL, or the caller's
`finished(owner)` says the owning run ended. Otherwise the caller waits up to `wait_s`, then gets
LeaseBusy, whose message is one line naming the lease and its holder.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from xts_pipeline import queries, store
from xts_pipeline.vocabulary import shown_pair

TTL_S = float(os.environ.get("XTS_LEASE_TTL_S", "300"))
WAIT_S = float(os.environ.get("XTS_LEASE_WAIT_S", "30"))
POLL_S = 0.5
HOST = socket.gethostname()


class LeaseBusy(RuntimeError):
    """Someone else holds the lease and is alive; the message names the lease and the holder."""


class LeaseLost(RuntimeError):
    """The lease this process held was taken over (it stopped renewing it for longer than its TTL)."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lease, as stored."""

    name: str
    owner: str
    what: str
    host: str | None
    pid: int | None
    pid_start: str | None
    run_id: str | None
    acquired_at: datetime
    renewed_at: datetime
    expires_at: datetime

    def describe(self) -> str:
        where = f"pid {self.pid} on {self.host}" if self.pid else f"between steps, last on {self.host}"
        return (f"{self.what} ({where}, since {self.acquired_at:%Y-%m-%d %H:%M:%S} UTC, "
                f"renewed {self.renewed_at:%H:%M:%S} UTC)")


def shown(name: str) -> str:
    """A lease name as people write it: pair:src__dst -> pair src->dst."""
    kind, _, key = name.partition(":")
    return f"{kind} {shown_pair(key)}"


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _pid_start(pid: int) -> str | None:
    """The process's start time (Linux /proc), so a reused pid is not taken for the holder."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return None if fields[0] == "Z" else fields[19]
    except (OSError, IndexError):
        return None


def pid_alive(pid: int, start: str | None) -> bool:
    """Whether the process is still the one that took the lease (a zombie counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if Path("/proc").is_dir():
        now_start = _pid_start(pid)
        if now_start is None:
            return False  # zombie, or gone between the two looks
        return start is None or now_start == start
    return True


def current(db: str | Path | None, name: str) -> Holder | None:
    """The stored holder of `name`, if any."""
    with store.connect(db) as con:
        row = con.execute(queries.load("lease/holder"), {"name": name}).fetchone()
    return None if row is None else Holder(*row)


def stale_reason(h: Holder, finished: Callable[[str], bool] | None = None, now: datetime | None = None) -> str | None:
    """Why `h` may be taken over, or None while its holder is alive."""
    now = now or _now()
    if h.expires_at < now:
        return f"not renewed since {h.renewed_at:%H:%M:%S} UTC (TTL passed)"
    if h.pid is not None and h.host == HOST and not pid_alive(h.pid, h.pid_start):
        return f"its process {h.pid} is gone"
    if finished is not None:
        with suppress(Exception):  # a failing look-up must not take a live lease
            if finished(h.run_id or h.owner):
                return f"run {h.run_id or h.owner} has finished"
    return None


@dataclass(frozen=True)
class Taken:
    """How a lease was taken: `guest` when another live process of the same owner keeps it (leave it be);
    `previous` and `why` when a stale holder was replaced."""

    name: str
    owner: str
    guest: bool = False
    previous: Holder | None = None
    why: str | None = None


def try_acquire(db: str | Path | None, name: str, owner: str, what: str, *, run_id: str | None = None,
                bind_pid: bool = True, ttl_s: float | None = None,
                finished: Callable[[str], bool] | None = None) -> tuple[Taken | None, Holder | None]:
    """One attempt: (how it was taken or None, the holder seen).

    Taken when the lease is free, already ours (same owner: re-entry), or stale. With `bind_pid`, this
    process becomes the one whose life keeps the lease; a re-entry while another live process of the same
    owner keeps it leaves that binding alone (a guest).
    """
    ttl = TTL_S if ttl_s is None else ttl_s
    pid = os.getpid()
    with store.connect(db) as con:
        con.execute("BEGIN")
        row = con.execute(queries.load("lease/holder"), {"name": name}).fetchone()
        held = None if row is None else Holder(*row)
        now = _now()
        why = None
        mine = held is not None and held.owner == owner
        if held is not None and not mine:
            why = stale_reason(held, finished, now)
            if why is None:
                con.execute("ROLLBACK")
                return None, held
        with _guard:
            here = _held.get(name, ("", ""))[1] == owner  # this process already holds it for this owner
        guest = mine and held is not None and (here or (held.pid not in (None, pid) and held.host == HOST
                                                         and pid_alive(held.pid, held.pid_start)))
        if guest and held is not None:
            new_pid, start, text = held.pid, held.pid_start, held.what
        else:
            new_pid, start, text = (pid, _pid_start(pid), what) if bind_pid else (None, None, what)
        con.execute(queries.load("lease/take"), {
            "name": name, "owner": owner, "what": text, "host": HOST, "pid": new_pid, "pid_start": start,
            "run_id": run_id or (held.run_id if mine and held is not None else None),
            "acquired_at": held.acquired_at if mine and held is not None else now, "renewed_at": now,
            "expires_at": now + timedelta(seconds=ttl)})
        con.execute("COMMIT")
    return Taken(name, owner, guest=guest, previous=held if why else None, why=why), held


def acquire(db: str | Path | None, name: str, owner: str, what: str, *, wait_s: float | None = None,
            **kw: object) -> Taken:
    """Take `name` for `owner`, waiting up to `wait_s` for a live holder; LeaseBusy after that."""
    wait = WAIT_S if wait_s is None else wait_s
    deadline = time.monotonic() + wait
    while True:
        taken, held = try_acquire(db, name, owner, what, **kw)  # type: ignore[arg-type]
        if taken is not None:
            if not taken.guest:
                _registry_add(db, name, owner)
            return taken
        if time.monotonic() >= deadline:
            assert held is not None
            raise LeaseBusy(f"{shown(name)} is busy: another cycle holds it, {held.describe()}; it was not "
                            f"run now. Wait for that cycle to end (or stop it), then run again")
        time.sleep(min(POLL_S, max(deadline - time.monotonic(), 0.01)))


def release(db: str | Path | None, name: str, owner: str, *, handover: bool = False,
            handover_s: float | None = None) -> None:
    """Give the lease up (only if still ours). `handover`: keep it for the owner, unbound from this process,
    for `handover_s` (the next step of the same run takes it up again; a finished run frees it)."""
    _registry_drop(name)
    with store.connect(db) as con:
        if handover:
            until = _now() + timedelta(seconds=TTL_S if handover_s is None else handover_s)
            con.execute(queries.load("lease/hand_over"), {"now": _now(), "until": until, "name": name, "owner": owner})
        else:
            con.execute(queries.load("lease/release"), {"name": name, "owner": owner})


@contextmanager
def hold(db: str | Path | None, names: list[str], owner: str, what: str, *, wait_s: float | None = None,
         **kw: object) -> Iterator[None]:
    """Hold every lease in `names` for the block (taken in order; on LeaseBusy the ones taken are freed)."""
    taken: list[Taken] = []
    try:
        for n in names:
            taken.append(acquire(db, n, owner, what, wait_s=wait_s, **kw))
        yield
    finally:
        for t in reversed(taken):
            if not t.guest:
                with suppress(Exception):
                    release(db, t.name, owner)


# --- heartbeat: renew what this process holds -------------------------------------------------------------

_held: dict[str, tuple[str, str]] = {}  # lease name -> (db, owner)
_lost: set[str] = set()
_guard = threading.Lock()
_beat: threading.Thread | None = None


def _registry_add(db: str | Path | None, name: str, owner: str) -> None:
    global _beat
    with _guard:
        _held[name] = (str(Path(db).absolute()) if db else "", owner)
        _lost.discard(name)
        if _beat is None or not _beat.is_alive():
            _beat = threading.Thread(target=_heartbeat, name="xts-lease-heartbeat", daemon=True)
            _beat.start()


def _registry_drop(name: str) -> None:
    with _guard:
        _held.pop(name, None)


def renew_now() -> None:
    """Renew every lease this process holds; a lease found taken over is marked lost."""
    with _guard:
        items = list(_held.items())
    now = _now()
    for name, (db, owner) in items:
        with suppress(store.StoreError), store.connect(db or None) as con:
            n = con.execute(queries.load("lease/renew"), {"now": now, "until": now + timedelta(seconds=TTL_S),
                                                          "name": name, "owner": owner}).fetchall()
            if not n:
                with _guard:
                    _lost.add(name)
                    _held.pop(name, None)


def check(name: str) -> None:
    """Raise LeaseLost if this process held `name` and it was taken over; no-op for leases never held here."""
    if name in _lost:
        raise LeaseLost(f"{shown(name)}: this cycle's lease was taken over by another cycle after it went "
                        f"unrenewed for {TTL_S:.0f}s; stopping before writing more")


def _heartbeat() -> None:
    while True:
        time.sleep(max(TTL_S / 4, 0.2))
        with _guard:
            if not _held:
                continue
        with suppress(Exception):
            renew_now()
