"""`xts sync` runs pairs into different targets at the same time and pairs into one target one after
another (each target has its own Graph budget). End to end: a real sandbox subprocess over
HTTPS, the CLI's own code path, worker processes, and a persistent Dagster instance in a temporary
DAGSTER_HOME whose run records give the start and end of every run."""

from __future__ import annotations

import argparse
import shutil
import textwrap
import time
from pathlib import Path

import dagster as dg
import pytest

from tests.e2e_world import seed
from xts_pipeline import store
from xts_pipeline.sandbox.process import SandboxProcess

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
# Two sources into t1 (they must take turns), one into t2 (it must not wait for t1).
PAIRS = [("s1", "t1"), ("s2", "t1"), ("s1", "t2")]
GUARDS = """\
    volume: {max_creates_pct_of_target: null}
    impersonation: {include_role_assignable_group_members: false, include_directory_role_holders: false}
    privilege: {treat_role_assignable_as_privileged: false}
"""


def topology_yaml(names: list[str]) -> str:
    tenants = "".join(textwrap.dedent(f"""\
      {n}:
        tenant_id: 00000000-0000-0000-00{i:02d}-000000000001
        domain: {n}.onmicrosoft.com
        client_id: 00000000-0000-0000-00{i:02d}-000000000002
        app_object_id: 00000000-0000-0000-00{i:02d}-000000000003
        credential: {{env: XTS_SECRET_{n.upper()}}}
    """) for i, n in enumerate(names, 1))
    pairs = "".join(f"  - pair: {{source: {s}, target: {t}}}\n    scope: {{all_members: true}}\n" for s, t in PAIRS)
    policies = "".join(
        f"  {t}:\n    allowed_sources: [{', '.join(sorted({s for s, tt in PAIRS if tt == t}))}]\n{GUARDS}"
        for t in sorted({t for _, t in PAIRS}))
    return ("tenants:\n" + textwrap.indent(tenants, "  ") + "topology:\n" + pairs + "inbound_policies:\n" + policies)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("concurrency")
    state = root / "sandbox"
    for i, (name, users) in enumerate((("s1", 12), ("s2", 12), ("t1", 4), ("t2", 4))):
        seed(state, name, users, 10 + i)
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home / "dagster.yaml")  # the committed pools config
    cfg = root / "topology.yaml"
    cfg.write_text(topology_yaml(["s1", "s2", "t1", "t2"]))
    with SandboxProcess(state, seed=None) as sb:
        tids = {t["name"]: t["tenant_id"] for t in sb.info["tenants"]}
        for s, t in PAIRS:
            sb.admin("PUT", f"/tenants/{t}/partners/{tids[s]}", json={
                "tenantId": tids[s], "identitySynchronization": {"userSyncInbound": {"isSyncAllowed": True}}})
        yield {"root": root, "sandbox": sb, "home": home, "cfg": cfg, "db": str(root / "xts.duckdb")}


def sync(world, monkeypatch, capsys) -> tuple[int, str, str]:
    """`xts sync` as the console script runs it; returns (exit code, stdout, the cycle id)."""
    from assets.sync_cli import sync_command

    monkeypatch.setenv("DAGSTER_HOME", str(world["home"]))
    monkeypatch.setenv("XTS_DUCKDB", world["db"])
    monkeypatch.setenv("XTS_SYNC_WORKERS", "4")
    rc = sync_command(argparse.Namespace(config=str(world["cfg"]), sandbox=str(world["sandbox"].state_dir),
                                         pairs=None, dry_run=False))
    out = capsys.readouterr().out
    cycle = next(line.split("cycle ", 1)[1].split()[0] for line in out.splitlines() if " took " in line)
    return rc, out, cycle


def runs(world, cycle: str) -> dict[tuple[str, str], tuple[float, float]]:
    """(job, partition) -> (start, end) of every run of one CLI cycle, from the instance's run records."""
    with dg.DagsterInstance.from_config(str(world["home"])) as inst:
        recs = inst.get_run_records(filters=dg.RunsFilter(tags={"xts/cycle": cycle}))
    assert all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in recs)
    return {(r.dagster_run.job_name, r.dagster_run.tags["dagster/partition"]): (r.start_time, r.end_time)
            for r in recs}


def overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    return min(a[1], b[1]) - max(a[0], b[0])


def table_rows(out: str) -> dict[str, list[str]]:
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in out.splitlines() if line.startswith("| s")]
    return {r[0]: r[1:] for r in rows}


def test_targets_apply_concurrently_and_one_target_in_turn(world, monkeypatch, capsys):
    rc, out, cycle = sync(world, monkeypatch, capsys)
    assert rc == 0, out
    rows = table_rows(out)
    assert list(rows) == [f"{s}->{t}" for s, t in PAIRS]  # topology order, whatever finished first
    assert all(r[-1] == "ok" and int(r[0]) > 0 for r in rows.values()), out  # creates, status
    rec = runs(world, cycle)
    assert len(rec) == 2 + 2 + len(PAIRS)  # a source run per source, a snapshot per target, a run per pair
    pair = {f"{s}__{t}": rec[("pair_sync_job", f"{s}__{t}")] for s, t in PAIRS}
    # Different targets: the t2 pair ran while a t1 pair was running.
    assert max(overlap(pair["s1__t2"], pair[k]) for k in ("s1__t1", "s2__t1")) > 0, pair
    # One target: its two pairs took turns (they share its write budget), in topology order.
    assert pair["s1__t1"][1] <= pair["s2__t1"][0], pair
    # Phase 1 ran per tenant at the same time, and every pair started after both of its tenants' runs.
    tenant_runs = [v for (job, _), v in rec.items() if job in ("source_job", "target_job")]
    assert any(overlap(a, b) > 0 for i, a in enumerate(tenant_runs) for b in tenant_runs[i + 1:])
    assert min(s for s, _ in pair.values()) >= max(e for _, e in tenant_runs)
    with store.connect(world["db"]) as con:
        created = dict(con.execute("""SELECT pair_key, count(*) FROM provisioning_log
                                      WHERE operation = 'create' AND status = 'Success' GROUP BY 1""").fetchall())
    assert set(created) == set(pair) and all(int(rows[k.replace("__", "->")][0]) == n for k, n in created.items())


def test_second_concurrent_cycle_is_a_noop(world, monkeypatch, capsys):
    before = world["sandbox"].admin("GET", "/state")
    with store.connect(world["db"]) as con:
        logged = con.execute("SELECT count(*) FROM provisioning_log").fetchone()[0]
    rc, out, cycle = sync(world, monkeypatch, capsys)
    assert rc == 0, out
    # Nothing changed since the first cycle (its writes came back in the snapshots as written): no pair runs.
    assert all(r[:7] == ["0"] * 7 and r[-1] == "unchanged (skipped)" for r in table_rows(out).values()), out
    with store.connect(world["db"]) as con:
        assert con.execute("SELECT count(*) FROM provisioning_log").fetchone()[0] == logged  # no pair applied
    after = world["sandbox"].admin("GET", "/state")
    assert after["tenants"] == before["tenants"]  # nothing written to any tenant
    # The change probe read every tenant's delta before any run and saw only the first cycle's own writes:
    # no run at all, not even the tenant runs.
    assert set(runs(world, cycle)) == set(), out


def test_a_failing_target_does_not_hide_the_others(world, monkeypatch, capsys):
    sb = world["sandbox"]
    perms = sb.tenant("t2")["permissions"]
    source = next(u for u in sb.admin("GET", "/tenants/s2/users")["value"] if u["userType"] == "Member")
    sb.admin("PATCH", f"/tenants/s2/users/{source['id']}", json={"jobTitle": "Moved While t2 Failed"})
    # t2's app can no longer read users: its snapshot fails, so its pair can't run this cycle.
    sb.admin("PUT", "/tenants/t2/permissions", json={"permissions": [
        p for p in perms if not p.startswith(("User.Read", "Directory.Read"))]})
    try:
        rc, out, _ = sync(world, monkeypatch, capsys)
    finally:
        sb.admin("PUT", "/tenants/t2/permissions", json={"permissions": perms})
    assert rc == 1, out
    rows = table_rows(out)
    assert list(rows) == [f"{s}->{t}" for s, t in PAIRS]
    assert rows["s1->t2"][-1] == "error" and "s1->t2: target_snapshot" in out
    assert rows["s2->t1"][1] == "1" and rows["s2->t1"][-1] == "ok"  # the other target's update went through
    assert rows["s1->t1"][-1] == "unchanged (skipped)"  # its inputs did not change
    moved = [u for u in sb.admin("GET", "/tenants/t1/users")["value"] if u.get("jobTitle") == "Moved While t2 Failed"]
    assert len(moved) == 1


# --- one cycle per pair at a time: leases in the store ------------------------------------------

def _cli(world, pair: str, **env: str):
    import os
    import subprocess
    import sys

    log = open(world["root"] / f"cli-{pair.replace('->', '_')}-{len(list(world['root'].glob('cli-*')))}.log", "w")  # noqa: SIM115
    return subprocess.Popen(
        [sys.executable, "-m", "xts_pipeline.cli", "sync", "--config", str(world["cfg"]), "--sandbox",
         str(world["sandbox"].state_dir), "--pairs", pair], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "DAGSTER_HOME": str(world["home"]), "XTS_DUCKDB": world["db"], "XTS_SYNC_WORKERS": "1",
             "PYTHONPATH": str(REPO), "XTS_LOG_LEVEL": "WARNING", **env}), log.name


def _move(world, tenant: str, n: int, title: str) -> list[str]:
    """Change n source users' jobTitle; returns their ids."""
    users = [u for u in world["sandbox"].admin("GET", f"/tenants/{tenant}/users")["value"]
             if u["userType"] == "Member" and u.get("creationType") != "Invitation"][:n]
    for i, u in enumerate(users):
        world["sandbox"].admin("PATCH", f"/tenants/{tenant}/users/{u['id']}", json={"jobTitle": f"{title} {i}"})
    return [u["id"] for u in users]


def _writes_for(world, sids: list[str], since) -> int:
    with store.connect(world["db"]) as con:
        return con.execute("""SELECT count(*) FROM provisioning_log WHERE pair_key = 's1__t1' AND status = 'Success'
                              AND list_contains(?, source_object_id) AND logged_at >= ?""", [sids, since]).fetchone()[0]


def _in_flight(world) -> int:
    with store.connect(world["db"]) as con:
        return con.execute("SELECT count(*) FROM write_journal WHERE pair_key = 's1__t1' AND state = 'in_flight'"
                           ).fetchone()[0]


def _now():
    from datetime import UTC, datetime

    return datetime.now(UTC).replace(tzinfo=None)


def test_two_cycles_of_one_pair_started_together_one_refuses_naming_the_holder(world):
    sids = _move(world, "s1", 8, "Race")
    since = _now()
    world["sandbox"].admin("PUT", "/faults", json={"spec": "tenant=t1,kind=write,latency_ms=400", "seed": 3})
    try:
        procs = [_cli(world, "s1->t1", XTS_LEASE_WAIT_S="0") for _ in range(2)]
        rcs = [p.wait(300) for p, _ in procs]
    finally:
        world["sandbox"].admin("PUT", "/faults", json={"spec": None})
    outs = [Path(name).read_text() for _, name in procs]
    assert sorted(rcs) == [0, 1], outs
    loser = outs[rcs.index(1)]
    busy = [line for line in loser.splitlines() if "is busy" in line]
    assert busy and "pair s1->t1 is busy: another cycle holds it, xts sync cycle cli-" in busy[0], loser
    assert "pid " in busy[0] and "Traceback" not in loser and "ConstraintException" not in loser
    assert _writes_for(world, sids, since) == len(sids)  # every change written once, not twice
    with store.connect(world["db"]) as con:
        assert con.execute("SELECT count(*) FROM leases").fetchone()[0] == 0  # freed at the end


def test_a_second_cycle_waits_for_the_first_and_then_has_nothing_to_do(world):
    sids = _move(world, "s1", 6, "Queue")
    since = _now()
    world["sandbox"].admin("PUT", "/faults", json={"spec": "tenant=t1,kind=write,latency_ms=400", "seed": 4})
    try:
        first, _ = _cli(world, "s1->t1", XTS_LEASE_WAIT_S="300")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with store.connect(world["db"]) as con:
                if con.execute("SELECT count(*) FROM leases WHERE name = 'pair:s1__t1'").fetchone()[0]:
                    break
            time.sleep(0.1)
        second, name2 = _cli(world, "s1->t1", XTS_LEASE_WAIT_S="300")
        assert first.wait(300) == 0 and second.wait(300) == 0, Path(name2).read_text()
    finally:
        world["sandbox"].admin("PUT", "/faults", json={"spec": None})
    assert _writes_for(world, sids, since) == len(sids)
    row = table_rows(Path(name2).read_text())["s1->t1"]
    assert row[:7] == ["0"] * 7, row  # the second cycle found everything done


def test_a_cycle_and_a_ui_materialization_of_the_same_pair(world, monkeypatch):
    from assets.definitions import build_definitions
    from assets.sync import APPLIED, DESIRED, GUARDED, PLAN
    from xts_pipeline import lease

    sids = _move(world, "s1", 8, "Ui")
    since = _now()
    world["sandbox"].admin("PUT", "/faults", json={"spec": "tenant=t1,kind=write,latency_ms=4000", "seed": 5})
    defs = build_definitions(world["cfg"], str(world["sandbox"].state_dir), world["db"])
    monkeypatch.setattr(lease, "WAIT_S", 0.0)

    def ui():
        with dg.DagsterInstance.from_config(str(world["home"])) as inst:
            return dg.materialize([*defs.assets, *defs.asset_checks], selection=[DESIRED, PLAN, GUARDED, APPLIED],
                                  partition_key="s1__t1", resources=defs.resources, instance=inst, raise_on_error=False)

    try:
        cli, name = _cli(world, "s1->t1", XTS_LEASE_WAIT_S="0")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not _in_flight(world):
            time.sleep(0.05)
        assert cli.poll() is None, "the CLI cycle must still be applying"
        res = ui()  # while the CLI applies: refused with one line naming the pair and the holder
        assert not res.success
        failure = next(e for e in res.all_events if e.is_step_failure).step_failure_data
        text = failure.user_failure_data.description if failure.user_failure_data else failure.error.message
        assert text.startswith("pair s1->t1 is busy") and "xts sync cycle cli-" in text
        assert cli.wait(300) == 0, Path(name).read_text()
    finally:
        world["sandbox"].admin("PUT", "/faults", json={"spec": None})
    assert _writes_for(world, sids, since) == len(sids)
    res = ui()  # afterwards: it runs, on the CLI's (older) snapshot, and writes nothing twice
    assert res.success
    assert _writes_for(world, sids, since) == len(sids)
