"""Sandbox time: runs `time_scale` times faster than wall time so tests need not wait real minutes."""

from __future__ import annotations

import time
from datetime import UTC, datetime


class SandboxClock:
    """A monotonic sandbox clock. `now()` is sandbox epoch seconds.

    Anchored at (sandbox_start, real_start); the anchor is exported/imported so that
    a restarted server continues from where it stopped (time spent stopped passes at 1x).
    """

    def __init__(self, time_scale: float = 1.0, start: float | None = None) -> None:
        if not time_scale > 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale!r}; pass e.g. --time-scale 60")
        self.time_scale = float(time_scale)
        self._sandbox0 = time.time() if start is None else float(start)
        self._mono0 = time.monotonic()
        self._offset = 0.0  # manual advances (admin route)

    def now(self) -> float:
        """Sandbox time in epoch seconds."""
        return self._sandbox0 + (time.monotonic() - self._mono0) * self.time_scale + self._offset

    def now_dt(self) -> datetime:
        return datetime.fromtimestamp(self.now(), tz=UTC)

    def iso_now(self) -> str:
        return iso(self.now())

    def advance(self, seconds: float) -> float:
        """Jump the sandbox clock forward (tests: expire delta tokens, deleted items)."""
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward; pass a positive number of seconds")
        self._offset += seconds
        return self.now()

    def real_seconds(self, sandbox_seconds: float) -> float:
        """How many wall-clock seconds a sandbox duration takes."""
        return sandbox_seconds / self.time_scale

    def export(self) -> dict:
        """State to persist: the sandbox time now and the wall time it was taken at."""
        return {"sandbox": self.now(), "wall": time.time()}

    @classmethod
    def resume(cls, saved: dict | None, time_scale: float = 1.0) -> SandboxClock:
        """Continue a persisted clock; wall time spent stopped counts at 1x, never backwards."""
        if not saved:
            return cls(time_scale)
        elapsed = max(0.0, time.time() - float(saved["wall"]))
        return cls(time_scale, start=float(saved["sandbox"]) + elapsed)


def iso(ts: float) -> str:
    """Graph's DateTimeOffset form: 2024-01-01T00:00:00Z."""
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
