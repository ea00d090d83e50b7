"""Progress of a CLI cycle on the terminal: users read per tenant, and writes done/total per pair.

The runs happen in worker processes, so this watches the store instead of their events: every couple of
seconds one short read (through store.connect's lock, like any step) of `raw_users` (users read per
tenant) and `write_journal` (every write of the current plan is journaled before it is sent, and marked
when its outcome arrives), shown with tqdm as one bar per pair with the rate against the target's
write budget (Graph's 3,000 writes per 150 s per app and tenant = 20/s). Shown when stderr is a terminal,
or with XTS_PROGRESS=1; XTS_PROGRESS=0 turns it off.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

from xts_pipeline import queries, store
from xts_pipeline.vocabulary import shown_pair

WRITE_BUDGET_PER_S = 3000 / 150  # documented per app + tenant write budget (xts_pipeline/graph/concurrency.py)
INTERVAL_S = 2.0


def enabled() -> bool:
    flag = os.environ.get("XTS_PROGRESS")
    return flag == "1" if flag in ("0", "1") else sys.stderr.isatty()


class CycleProgress:
    """A background thread drawing tqdm bars from the store until `close()`."""

    def __init__(self, db: str, tenants: list[str], pair_keys: list[str]) -> None:
        self.db, self.tenants, self.pair_keys = db, tenants, pair_keys
        self._stop = threading.Event()
        self._bars: dict[str, Any] = {}
        self._thread = threading.Thread(target=self._loop, name="xts-progress", daemon=True)
        self._started = time.monotonic()
        self._first: dict[str, tuple[float, int]] = {}

    def __enter__(self) -> CycleProgress:
        if enabled():
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        for bar in self._bars.values():
            bar.close()

    def _bar(self, key: str, desc: str, unit: str) -> Any:
        from tqdm import tqdm

        if key not in self._bars:
            self._bars[key] = tqdm(desc=desc, unit=unit, total=None, leave=True, file=sys.stderr,
                                   position=len(self._bars), dynamic_ncols=True)
        return self._bars[key]

    def _poll(self) -> None:
        try:
            with store.connect(self.db) as con:
                read = dict(con.execute(queries.load("progress/users_read", "assets"), [self.tenants]).fetchall())
                writes = con.execute(queries.load("progress/writes", "assets"), [self.pair_keys]).fetchall()
        except Exception:  # noqa: BLE001 - progress is best effort; the cycle's own results are what count
            return
        for tenant, n in read.items():
            bar = self._bar(f"t:{tenant}", f"read {tenant}", " users")
            bar.n = int(n)
            bar.refresh()
        now = time.monotonic()
        for key, total, done in writes:
            bar = self._bar(f"p:{key}", f"apply {shown_pair(key)}", " writes")
            bar.total, bar.n = int(total), int(done)
            t0, d0 = self._first.setdefault(key, (now, int(done)))
            rate = (int(done) - d0) / (now - t0) if now > t0 else 0.0
            bar.set_postfix_str(f"{rate:.1f}/s of the target's {WRITE_BUDGET_PER_S:.0f}/s budget", refresh=True)

    def _loop(self) -> None:
        while not self._stop.wait(INTERVAL_S):
            self._poll()
        self._poll()
