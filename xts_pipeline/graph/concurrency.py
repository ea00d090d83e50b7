"""Adaptive pacing for writes: an AIMD-style rate limiter plus a concurrency cap, fed by Graph's signals.

Why a *rate* and not only a concurrency limit: a local or fast Graph answers a 20-request batch in
tens of milliseconds, so even one batch in flight could send hundreds of writes a second, far past
the 3,000 writes / 150 s budget. The limiter paces writes with a token bucket whose rate adapts:

- no throttle signal yet: grow multiplicatively (slow start) from the documented budget;
- `x-ms-throttle-limit-percentage` (sent above 80 %): steer the window towards `target_pct`;
- 429: cut the rate and the concurrency, at most once per Retry-After period so one burst of
  429s from the same full window counts as one congestion event (as TCP does once per RTT).
The window is a sliding one, so holding it near-full at a steady rate uses the budget without
429 storms.
"""

from __future__ import annotations

import threading
import time
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
        self.stats = ControllerStats()
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
            self._refill(now)
            need = min(float(writes), self.burst)
            if self.tokens >= need:
                self.tokens -= writes  # may go negative for an oversize batch: later ones wait longer
                return 0.0
            return (need - self.tokens) / self.rate

    @property
    def max_in_flight(self) -> int:
        return max(1, int(self.concurrency))

    # --------------------------------------------------------------- feedback
    def _set_rate(self, rate: float) -> None:
        self.rate = min(self.max_rate, max(self.min_rate, rate))
        self.stats.min_rate = min(self.stats.min_rate, self.rate)
        self.stats.max_rate = max(self.stats.max_rate, self.rate)

    def on_success(self, limit_pct: float | None) -> None:
        """A write batch (or sub-request group) was accepted; `limit_pct` from its headers if any."""
        with self._lock:
            if limit_pct is None:
                if self.slow_start:
                    self._set_rate(self.rate * 1.3)
                else:
                    self._set_rate(self.rate * 1.02 + 0.2)
            else:
                self.slow_start = False
                # Proportional step towards target_pct, bounded per sample.
                err = (self.target_pct - limit_pct) / 100.0
                factor = min(1.04, max(0.90, 1.0 + 2.0 * err))
                self._set_rate(self.rate * factor)
            self.concurrency = min(self.max_concurrency, self.concurrency + 0.1)

    def on_throttle(self, retry_after: float | None) -> None:
        """A 429: cut rate and concurrency once per Retry-After period."""
        with self._lock:
            self.stats.throttles += 1
            self.slow_start = False
            now = self.clock()
            if now < self.cut_until:
                return
            self.stats.cuts += 1
            self.cut_until = now + max(retry_after or 1.0, 0.5)
            self._set_rate(self.rate * 0.8)
            self.concurrency = max(1.0, self.concurrency * 0.7)
            self.tokens = min(self.tokens, 0.0)

    def on_error(self) -> None:
        """A lost $batch (reset/timeout): be a little more careful with concurrency, keep the rate."""
        with self._lock:
            self.concurrency = max(1.0, self.concurrency * 0.95)
