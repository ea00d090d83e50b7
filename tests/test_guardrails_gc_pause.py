"""gc_paused: the collector is off inside, restored after, and what the block made is not walked right after."""

from __future__ import annotations

import gc
import weakref

from xts_pipeline.guardrails.gc_pause import gc_paused


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_the_block_runs_without_the_collector_and_what_it_made_joins_the_oldest_generation() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():  # nesting keeps it off
            assert not gc.isenabled()
        assert not gc.isenabled()
        kept = [[i] for i in range(50_000)]  # tracked containers, as a decoded plan is
    # the block's objects joined the oldest generation: the next young collection does not walk them
    assert any(o is kept for o in gc.get_objects(generation=2))
    assert gc.isenabled() and gc.get_freeze_count() == 0
    assert len(kept) == 50_000


def test_cycles_made_inside_are_still_collected() -> None:
    with gc_paused():
        ref = weakref.ref(_Node())
    assert ref() is not None  # not collected while paused, nor by refcounting
    gc.collect()
    assert ref() is None


def test_objects_someone_else_froze_stay_frozen() -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with gc_paused():
            _ = [[i] for i in range(1_000)]
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
