"""Retry timing: Retry-After parsing and exponential backoff with full jitter.

Why full jitter: after a reset or a 429 burst many parallel batches fail at once; random delays in
[0, base*2^n] spread their retries instead of re-synchronising them into another burst.
"""

from __future__ import annotations

import email.utils
import random
import time

__all__ = ["parse_retry_after", "backoff_delay", "RETRYABLE_STATUS"]

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None if absent/invalid."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, min(seconds, 3600.0))


def backoff_delay(attempt: int, *, base: float = 0.5, cap: float = 30.0, rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff: uniform(0, min(cap, base * 2**attempt)); attempt counts from 0."""
    upper = min(cap, base * (2 ** min(max(attempt, 0), 30)))
    return (rng or random).uniform(0.0, upper)
