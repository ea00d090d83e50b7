"""SIGKILL in the middle of apply, then rerun: no duplicate users in the target, no lost change.

The apply runs in a child process (its own Dagster run on a shared on-disk instance) while the sandbox
slows writes down; we kill it once some users exist in the target. Writes it had journaled but not
finished are then reconciled against the target before anything is retried.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest

from assets.sync import APPLIED
from tests.e2e_world import DST, PAIR, SRC, make_world
from xts_pipeline import store

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]

CHILD = """\
import sys
sys.path.insert(0, {repo!r})
import dagster as dg
from assets.sync import APPLIED, DESIRED, PLAN
from xts_pipeline.definitions import build_definitions
defs = build_definitions({cfg!r}, {state!r}, {db!r})
instance = dg.DagsterInstance.get()
dg.materialize([*defs.assets, *defs.asset_checks], selection=[DESIRED, PLAN, APPLIED], partition_key={pair!r},
               resources=defs.resources, instance=instance)
"""


def _target_count(world) -> int:
    return sum(1 for u in world.target_users() if u.get("creationType") == "Invitation")


def test_sigkill_mid_apply_then_rerun_converges_without_duplicates(tmp_path):
    world = make_world(tmp_path, src_users=90, dst_users=5)
    try:
        home = tmp_path / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        world.instance = dg.DagsterInstance.local_temp(tempdir=str(home))
        assert world.materialize(*_src()).success and world.materialize(*_dst()).success
        expected = {u["id"] for u in world.source_users()
                    if u["userType"] == "Member" and u.get("department") != "Legal"}
        world.sandbox.admin("PUT", "/faults", json={"spec": f"tenant={DST},kind=write,latency_ms=120", "seed": 1})
        script = tmp_path / "child.py"
        script.write_text(textwrap.dedent(CHILD.format(
            repo=str(REPO), cfg=str(tmp_path / "topology.yaml"), state=str(world.sandbox.state_dir),
            db=world.db, pair=PAIR)))
        child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 env={**os.environ, "DAGSTER_HOME": str(home)})
        deadline = time.monotonic() + 120
        while _target_count(world) < 10 and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        written = _target_count(world)
        assert 0 < written < len(expected), "the kill must land in the middle of apply"
        with store.connect(world.db) as con:
            in_flight = con.execute("SELECT count(*) FROM write_journal WHERE state = 'in_flight'").fetchone()[0]
        assert in_flight > 0
        world.sandbox.admin("PUT", "/faults", json={"spec": None})

        # Rerun only the apply: the journal's in-flight writes are reconciled against the target first.
        res = world.materialize([APPLIED], PAIR)
        assert res.success
        mat = res.asset_materializations_for_node("applied_changes")[0]
        assert mat.metadata["reconciled_after_crash"].value > 0
        # Then a full cycle: nothing is left to do.
        final = world.cycle()
        with store.connect(world.db) as con:
            left = con.execute("SELECT action, user_principal_name, CAST(changes AS VARCHAR) FROM plan "
                               "WHERE action <> 'skip' LIMIT 5").fetchall()
        assert set(final["plan"]) <= {"skip"}, left

        users = [u for u in world.target_users() if u.get("creationType") == "Invitation"]
        mails = Counter(u["mail"].lower() for u in users)
        assert not [m for m, n in mails.items() if n > 1], "duplicate B2B users after the crash"
        links = Counter(next(v for k, v in u.items() if k.endswith("_xtsSourceObjectId")) for u in users)
        assert set(links) == expected and max(links.values()) == 1
        with store.connect(world.db) as con:
            assert con.execute("SELECT count(*) FROM write_journal WHERE state = 'in_flight'").fetchone()[0] == 0
    finally:
        world.sandbox.stop()


def _src():
    from assets.sync import RAW, STAGED

    return [RAW, STAGED], SRC


def _dst():
    from assets.sync import SNAPSHOT

    return [SNAPSHOT], DST
