"""Big pairs plan through fast paths: each property compared the fast way (its key in the sampled $keys) or the
exact slow way (a key outside the sample), and the comparison shared with the drift through temp tables. Small
pairs (the planner tests' worlds) take the plain path. These planner scenarios run again on the fast paths,
with the whole sample, with none and with one key (every other property then takes the slow path)."""

from __future__ import annotations

import pytest

from tests.test_planner import (  # noqa: F401 - `world` is the fixture these scenarios use
    test_attribute_change_updates_only_that_property,
    test_disabled_source_blocks_sign_in,
    test_drift_repair_is_a_planned_write,
    test_existing_b2b_guest_is_adopted,
    test_first_cycle_creates_with_link_and_provenance,
    test_lost_store_recovers_last_applied_without_rewriting,
    test_plan_then_apply_converges,
    test_target_edits_persist_until_the_source_changes,
    world,
)
from xts_pipeline import planner


@pytest.fixture(autouse=True, params=[None, [], ["displayName"]], ids=["sampled", "no-sampled-key", "one-key"])
def _fast_paths(request, monkeypatch):
    monkeypatch.setattr(planner, "FAST_PATHS_FROM", 0)
    keys = request.param
    if keys is not None:
        monkeypatch.setattr(planner, "plan_keys",
                            lambda con, pair: {"keys": keys, "paths": [f'$."{k}"' for k in keys]})
