"""Pause Python's cyclic garbage collector while the guardrails build and read 100k plan rows.

Decoding a plan allocates a few million small dicts, lists and strings, none of them in a reference cycle
(refcounting frees them). The cyclic collector still runs every ~700 allocations and, as the heap grows,
walks every live object in its oldest generation: measured on the 100k-user bench, that doubled the time
of decoding the plan and of every guardrail. Pausing it for the run changes no result, only when cycles
elsewhere in the process are collected (at the next full collection: what the block made is moved to the
oldest generation as the previous state is restored, so the next allocation does not walk it all).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Disable the cyclic collector inside the block; restore the previous state after (nesting is safe)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            # What the block allocated (and still holds) joins the oldest generation untraversed: freeze and
            # unfreeze are O(1) list moves that also zero the generations' counts. Plain re-enabling would have
            # the next allocation walk every object the block made (the plan's rows), which cost as much as a
            # guardrail on the 100k-user bench; they are walked at the next full collection instead.
            if gc.get_freeze_count() == 0:  # never unfreeze what someone else froze
                gc.freeze()
                gc.unfreeze()
            gc.enable()
