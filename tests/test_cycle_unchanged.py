"""A cycle with nothing to do launches no pair run: its summary says "unchanged (skipped)" and the pair's asset
records why; any one change (a source attribute, a target edit, the config, an approval) runs the pair
again. Real sandbox over HTTPS, the real cycle runner (assets/cycle.py) and a real Dagster instance, one
small world in successive cycles."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import dagster as dg
import pytest

from assets.cycle import run_cycle
from assets.definitions import CYCLE_TAG, KIND_TAG
from assets.resources import load_topology
from assets.summary import UNCHANGED, format_summary
from assets.sync import RAW, SNAPSHOT, STAGED
from assets.topology_assets import pair_key as pair_asset_key
from tests.e2e_world import DST, PAIR, SRC, TOPOLOGY, World, make_world
from xts_pipeline import store, unchanged
from xts_pipeline.guardrails.approvals import record_approval

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    w = make_world(tmp_path_factory.mktemp("unchanged"))
    home = w.root / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home / "dagster.yaml")  # the committed instance config
    w.instance = dg.DagsterInstance.from_config(str(home))  # a persistent one, as `xts sync` uses
    yield w
    w.instance.dispose()
    w.sandbox.stop()


def cycle(world: World, tag: str, **kw) -> dict:
    """One cycle as `xts sync` runs it (every run in this process); the outcome and the cycle's pair runs."""
    topo = load_topology(str((world.root / "topology.yaml").absolute()), str(world.sandbox.state_dir))
    tags = {CYCLE_TAG: f"test-{tag}", KIND_TAG: "cli"}
    [o] = run_cycle(world.defs, world.instance, topo, world.db, workers=1, tags=tags, **kw)
    runs = world.instance.get_runs(filters=dg.RunsFilter(tags={CYCLE_TAG: tags[CYCLE_TAG]}))
    return {"outcome": o, "pair_runs": [r for r in runs if r.job_name.startswith("pair_")],
            "tenant_runs": [r for r in runs if not r.job_name.startswith("pair_")], "summary": format_summary([o])}


def skipped(res: dict) -> bool:
    return res["outcome"].status == UNCHANGED and not res["pair_runs"]


def ran(res: dict) -> bool:
    return res["outcome"].status == "ok" and len(res["pair_runs"]) == 1


def linked_target_user(world: World) -> dict:
    return next(u for u in world.target_users() if any(k.endswith("_xtsSourceObjectId") for k in u))


def test_first_cycle_runs_and_a_cycle_after_it_skips_the_pair(world):
    first = cycle(world, "1")
    assert ran(first) and first["outcome"].counts["creates"] > 0, first["summary"]
    # The next snapshot shows the users the first cycle created (our own echo): that is no change.
    again = cycle(world, "2")
    assert skipped(again), again["summary"]
    # The change probe read both tenants' deltas (the echo of what the first cycle wrote) before any run:
    # no tenant run either, and each side's asset partition says why.
    assert again["tenant_runs"] == []
    for key, tenant in ((RAW, SRC), (SNAPSHOT, DST)):
        seen = world.instance.fetch_observations(dg.AssetKey(key.path) if hasattr(key, "path") else key,
                                                 limit=1).records[0].asset_observation
        assert seen.partition == tenant and seen.metadata["cycle"].value == "test-2"
        assert seen.metadata["status"].value == "no run needed (change probe)"
    assert UNCHANGED in again["summary"] and "no run needed" in again["summary"]
    assert all(v == 0 for v in again["outcome"].counts.values())
    obs = world.instance.fetch_observations(pair_asset_key(PAIR), limit=1).records[0].asset_observation
    assert obs.metadata["status"].value == UNCHANGED and obs.metadata["cycle"].value == "test-2"
    assert obs.metadata["last_clean_run"].value == first["pair_runs"][0].run_id
    assert len(obs.metadata["inputs_fingerprint"].value) == 64


def test_a_source_attribute_change_runs_the_pair_then_it_skips_again(world):
    user = next(u for u in world.source_users() if u.get("department") not in (None, "Legal")
                and u["userType"] == "Member" and u.get("creationType") != "Invitation")
    world.graph(SRC).request("PATCH", f"users/{user['id']}", json_body={"jobTitle": "Skip Probe"})
    res = cycle(world, "3")
    assert ran(res) and res["outcome"].counts["updates"] == 1, res["summary"]
    assert skipped(cycle(world, "4"))  # the update came back as written


def test_a_target_side_edit_runs_the_pair(world):
    user = linked_target_user(world)
    world.graph(DST).request("PATCH", f"users/{user['id']}", json_body={"officeLocation": "Edited In Target"})
    res = cycle(world, "5")
    assert ran(res), res["summary"]
    assert res["outcome"].counts["updates"] == 0  # the three-way diff leaves a target-side edit alone
    assert skipped(cycle(world, "6"))  # the edit stays as it is: nothing new


def test_a_config_change_runs_the_pair(world):
    cfg = world.root / "topology.yaml"
    cfg.write_text(textwrap.dedent(TOPOLOGY).replace("max_creates_pct_of_target: null",
                                                     "max_creates_pct_of_target: null, max_updates_per_cycle: 4999"))
    try:
        res = cycle(world, "7")
        assert ran(res), res["summary"]
        assert skipped(cycle(world, "8"))
    finally:
        cfg.write_text(textwrap.dedent(TOPOLOGY))
    assert ran(cycle(world, "9"))  # back to the old config: a change too


def test_an_approval_runs_the_pair(world):
    with store.connect(world.db) as con:
        record_approval(con, PAIR, "0" * 32, reason="approval probe")
    assert ran(cycle(world, "10"))
    assert skipped(cycle(world, "11"))


def test_full_runs_an_unchanged_pair(world):
    res = cycle(world, "12", full=True)
    assert ran(res), res["summary"]
    assert res["pair_runs"][0].run_config["ops"]["provisioning_plan"]["config"]["full"] is True


def test_the_pair_sensor_skips_an_unchanged_pair_and_says_why(world):
    assert skipped(cycle(world, "13"))
    tags = {CYCLE_TAG: "20261203T0900"}
    assert world.materialize([RAW, STAGED], SRC, tags={**tags, KIND_TAG: "source"}).success
    assert world.materialize([SNAPSHOT], DST, tags={**tags, KIND_TAG: "target"}).success
    sensor = world.defs.resolve_sensor_def("pair_cycle_sensor")
    tick = sensor.evaluate_tick(dg.build_sensor_context(instance=world.instance, definitions=world.defs))
    assert not tick.run_requests and "unchanged (skipped)" in (tick.skip_message or "")
    [event] = tick.asset_events
    assert event.asset_key == pair_asset_key(PAIR) and event.metadata["cycle"].value == "20261203T0900"
    # A change in the source: the next tick of a new scheduled cycle launches the pair's run.
    user = next(u for u in world.source_users() if u["userType"] == "Member" and u.get("department") not in (None, "Legal")
                and u.get("creationType") != "Invitation")
    world.graph(SRC).request("PATCH", f"users/{user['id']}", json_body={"jobTitle": "Sensor Probe"})
    tags = {CYCLE_TAG: "20261203T0940"}
    assert world.materialize([RAW, STAGED], SRC, tags={**tags, KIND_TAG: "source"}).success
    assert world.materialize([SNAPSHOT], DST, tags={**tags, KIND_TAG: "target"}).success
    tick = sensor.evaluate_tick(dg.build_sensor_context(instance=world.instance, definitions=world.defs,
                                                        cursor=tick.cursor))
    assert [r.partition_key for r in tick.run_requests] == [PAIR] and not tick.asset_events


def test_pending_work_always_runs(world):
    with store.connect(world.db) as con:
        assert unchanged.pending(con, PAIR) == ""
        con.execute("UPDATE write_journal SET state = 'in_flight' WHERE rowid = (SELECT min(rowid) FROM write_journal "
                    "WHERE pair_key = ?)", [PAIR])
        assert "in flight" in unchanged.pending(con, PAIR)
        con.execute("UPDATE write_journal SET state = 'done' WHERE state = 'in_flight' AND pair_key = ?", [PAIR])
        con.execute("UPDATE plan_meta SET full_at = full_at - INTERVAL 25 HOUR WHERE pair_key = ?", [PAIR])
        assert "full re-diff" in unchanged.pending(con, PAIR)
        con.execute("UPDATE plan_meta SET full_at = full_at + INTERVAL 25 HOUR WHERE pair_key = ?", [PAIR])
