"""graph.retry and graph.concurrency: backoff bounds and the pacing controller's reactions."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from xts_pipeline.graph.concurrency import AdaptiveController
from xts_pipeline.graph.retry import backoff_delay, parse_retry_after


def test_retry_after_forms():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 2.5 ") == 2.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-3") == 0.0
    # HTTP-date form (RFC 9110): relative to `now`
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0


@given(st.integers(min_value=0, max_value=100), st.integers(min_value=0, max_value=2**32))
def test_full_jitter_bounds(attempt, seed):
    d = backoff_delay(attempt, base=0.5, cap=30.0, rng=random.Random(seed))
    assert 0.0 <= d <= min(30.0, 0.5 * 2 ** min(attempt, 30))


def test_jitter_spreads_retries():
    rng = random.Random(1)
    delays = {round(backoff_delay(5, rng=rng), 3) for _ in range(50)}
    assert len(delays) > 40


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_token_bucket_paces_at_rate():
    clock = FakeClock()
    c = AdaptiveController(initial_rate=20.0, burst=20.0, clock=clock)
    assert c.reserve(20) == 0.0
    wait = c.reserve(20)
    assert abs(wait - 1.0) < 1e-9  # 20 writes at 20/s
    clock.t += wait
    assert c.reserve(20) == 0.0
    assert c.reserve(0) == 0.0  # lookups cost no write budget


def test_slow_start_is_ack_clocked_then_steers_to_target():
    clock = FakeClock()
    c = AdaptiveController(initial_rate=20.0, clock=clock)
    for _ in range(10):
        c.on_success(None, accepted=0)
    assert c.rate == 20.0  # nothing accepted yet: never run ahead of what Graph took
    for _ in range(10):
        clock.t += 0.1
        c.on_success(None, accepted=20)  # 200 writes/s accepted
    assert 20.0 * 2 < c.rate <= 400.0  # grows fast, bounded by 2x the accepted rate
    r = c.rate
    clock.t += 0.5
    c.on_success(99.5, accepted=20)  # Graph's header is a fraction (0.995); the writer passes percent
    assert c.rate < r and not c.slow_start  # window nearly full: slow down
    assert c.max_in_flight <= 2  # and keep few batches in flight
    r = c.rate
    clock.t += 0.5
    c.on_success(85.0, accepted=20)
    assert r < c.rate <= r * 1.5**0.5 + 1e-9  # window has room: speed up, bounded per second


def test_quota_429_pauses_everyone_and_cuts_once_per_period():
    clock = FakeClock()
    c = AdaptiveController(initial_rate=100.0, initial_concurrency=8, clock=clock)
    c.on_throttle(2.0, quota=True)
    c.on_throttle(2.0, quota=True)
    assert c.stats.cuts == 1 and c.stats.throttles == 2 and c.rate == 85.0
    assert c.reserve(20) == 2.0  # paused for Retry-After
    assert c.max_in_flight == 1  # resume with one probe batch
    clock.t = 2.0
    assert c.reserve(0) == 0.0
    clock.t = 2.5
    c.on_throttle(None, quota=True)
    assert c.stats.cuts == 2 and abs(c.rate - 72.25) < 1e-9


def test_scope_less_429_cuts_towards_accepted_rate_without_pausing():
    clock = FakeClock()
    c = AdaptiveController(initial_rate=100.0, clock=clock)
    for _ in range(20):
        clock.t += 0.1
        c.on_success(None, accepted=5)  # ~50/s accepted
    c.rate = 1000.0
    c.on_throttle(1.0, quota=False)
    assert c.rate == 250.0  # towards the ~50/s accepted, but by 75 % at most
    clock.t += 0.01
    assert c.paused_until == 0.0


@given(st.lists(st.one_of(st.none(), st.floats(0, 100), st.just(-1.0)), max_size=200))
def test_rate_and_concurrency_stay_in_bounds(events):
    c = AdaptiveController(min_rate=0.5, max_rate=500.0, max_concurrency=12, clock=FakeClock())
    for e in events:
        if e == -1.0:
            c.on_throttle(1.0)
        else:
            c.on_success(e)
        assert 0.5 <= c.rate <= 500.0
        assert 1 <= c.max_in_flight <= 12
