"""Adaptive pacing for writes: an AIMD-style rate limiter plus a concurrency cap, fed by Graph's signals.

Why a *rate* and not only a concurrency limit: a local or fast Graph answers a 20-request batch in
tens of milliseconds, so even one batch in flight could send hundreds of writes a second, far past
the 3,000 writes / 150 s budget. The controller paces writes with a token bucket whose rate adapts:

- slow start (no signal yet): x1.3 per accepted batch, but never above twice the write rate Graph
  actually accepted over the last 2 s ("ack clock"), starting from the documented 20 writes/s;
- `x-ms-throttle-limit-percentage` (sent above 80 % of a limit): steer towards `target_pct`,
  per second rather than per batch; above `near_full_pct` only 1-2 batches stay in flight,
  because when the window fills every request already in flight comes back 429;
- a quota 429 (it names `x-ms-throttle-scope`): pause *all* writes until Retry-After, cut the
  rate 15 %, and resume with one probe batch; a 429 without a scope (transient) only cuts the
  rate towards the accepted rate when it hits most of a batch, and never pauses everyone;
- cuts happen at most once per Retry-After period, so one full window counts as one event.
The limits are sliding windows, so this fills capacity as soon as it frees, with a few 429s per
refill instead of a storm (bench/graph_write_bench.py measures both).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["AdaptiveController", "ControllerStats"]


@dataclass
class ControllerStats:
    throttles: int = 0
    cuts: int = 0
    min_rate: float = float("inf")
    max_rate: float = 0.0
    samples: list[float] = field(default_factory=list)


class AdaptiveController:
    """Token bucket with an adaptive rate (writes/s) and an AIMD concurrency cap. Thread-safe."""

    def __init__(
        self,
        *,
        initial_rate: float = 20.0,  # 3,000 writes / 150 s, the documented per app+tenant budget
        min_rate: float = 0.5,
        max_rate: float = 5_000.0,
        initial_concurrency: int = 6,
        max_concurrency: int = 12,
        burst: float = 40.0,
        target_pct: float = 96.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = float(initial_rate)
        self.min_rate = min_rate
        self.max_rate = max_rate
        self.concurrency = float(initial_concurrency)
        self.max_concurrency = max_concurrency
        self.burst = burst
        self.target_pct = target_pct
        self.clock = clock
        self.tokens = burst
        self.last = clock()
        self.slow_start = True
        self.cut_until = 0.0
        self.paused_until = 0.0
        self.last_pct: float | None = None
        self.near_full_pct = 95.0
        self.near_full_in_flight = 2
        self.last_adjust = self.last
        self.stats = ControllerStats()
        self.initial_rate = float(initial_rate)
        self.horizon = 2.0  # seconds of accepted-write history for the "ack clock"
        self._accepted: deque[tuple[float, int]] = deque()
        self._accepted_sum = 0
        self._lock = threading.Lock()

    # --------------------------------------------------------------- pacing
    def _refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now

    def reserve(self, writes: int) -> float:
        """0.0 and consume `writes` tokens if they are available now, else seconds to wait."""
        if writes <= 0:
            return 0.0
        with self._lock:
            now = self.clock()
            if now < self.paused_until:
                return self.paused_until - now
            self._refill(now)
            need = min(float(writes), self.burst)
            if self.tokens >= need:
                self.tokens -= writes  # may go negative for an oversize batch: later ones wait longer
                return 0.0
            return (need - self.tokens) / self.rate

    @property
    def max_in_flight(self) -> int:
        """Batches allowed in flight. Near a full window at most `near_full_in_flight`: when it
        fills, every request already in flight comes back 429, so few in flight means few 429s."""
        cap = max(1, int(self.concurrency))
        if self.last_pct is not None and self.last_pct >= 100.0:
            return 1  # full (or just throttled): probe with one batch
        if self.last_pct is not None and self.last_pct >= self.near_full_pct:
            return min(cap, self.near_full_in_flight)
        return cap

    # --------------------------------------------------------------- feedback
    def _set_rate(self, rate: float) -> None:
        self.rate = min(self.max_rate, max(self.min_rate, rate))
        self.stats.min_rate = min(self.stats.min_rate, self.rate)
        self.stats.max_rate = max(self.stats.max_rate, self.rate)

    def _record(self, now: float, accepted: int) -> float:
        """Remember accepted writes; return the accepted rate (writes/s) over the recent horizon."""
        if accepted:
            self._accepted.append((now, accepted))
            self._accepted_sum += accepted
        while self._accepted and self._accepted[0][0] < now - self.horizon:
            self._accepted_sum -= self._accepted.popleft()[1]
        return self._accepted_sum / self.horizon

    def on_success(self, limit_pct: float | None, accepted: int = 0) -> None:
        """A write batch was accepted (`accepted` writes); `limit_pct` (0-180, percent) if Graph sent it.

        Steering is per second, not per batch, so it reacts as fast at 20 writes/s as at 2,000.
        Growth is "ack-clocked": the rate never runs ahead of twice what Graph actually accepted
        recently, so slow start can't overshoot to thousands/s before the first throttle signal.
        """
        with self._lock:
            now = self.clock()
            dt = min(max(now - self.last_adjust, 0.0), 1.0)
            self.last_adjust = now
            got = self._record(now, accepted)
            self.last_pct = limit_pct
            if limit_pct is None and self.slow_start:
                self._set_rate(min(self.rate * 1.3, max(self.initial_rate, 2.0 * got)))
            elif limit_pct is None:
                # Below 80 % of every limit (Graph sends the header only above): speed up.
                self._set_rate(self.rate * 1.5 ** dt)
            else:
                self.slow_start = False
                per_second = min(1.5, max(0.5, 1.0 + 0.05 * (self.target_pct - limit_pct)))
                self._set_rate(self.rate * per_second ** dt)
            self.concurrency = min(self.max_concurrency, self.concurrency + 0.1)

    def on_throttle(self, retry_after: float | None, accepted: int = 0, quota: bool = True) -> None:
        """A 429: cut rate and concurrency once per Retry-After period.

        A quota 429 (Graph names the throttle scope) also pauses every write until Retry-After:
        the window is full for the whole app+tenant, so anything sent meanwhile is refused too.
        The cut goes towards what Graph accepted recently (when the window is full, the rate at
        which old writes leave it): by 30 % at least and 75 % at most.
        """
        with self._lock:
            self.stats.throttles += 1
            self.slow_start = False
            now = self.clock()
            got = self._record(now, accepted)
            wait = min(max(retry_after if retry_after is not None else 1.0, 0.0), 60.0)
            if quota:
                self.paused_until = max(self.paused_until, now + wait)
                self.last_pct = 100.0
            if now < self.cut_until:
                return
            self.stats.cuts += 1
            self.cut_until = now + min(max(wait, 0.5), 5.0)
            if quota:  # the pause already stops the flood; resume near the rate that filled the window
                self._set_rate(self.rate * 0.85)
            else:
                self._set_rate(min(self.rate * 0.7, max(got, self.rate * 0.25)))
            self.concurrency = max(1.0, self.concurrency * 0.7)
            self.tokens = min(self.tokens, 0.0)

    def on_error(self) -> None:
        """A lost $batch (reset/timeout): be a little more careful with concurrency, keep the rate."""
        with self._lock:
            self.concurrency = max(1.0, self.concurrency * 0.95)
