"""Pipeline bench: a 100,000-user source into one target, over the sandbox's real HTTPS.

Prints, for a full cycle and for an incremental one with 100 changed users:
extract (Graph delta -> DuckDB), stage (pandera), snapshot (target), desired (scoping + mappings),
plan (DuckDB SQL); the ratios against the limits (full extract+stage+plan < 60 s, incremental < 10 % of
full, peak RSS < 2 GB); and the sandbox's own RSS for context.
Runs the library functions the Dagster assets wrap (the wrappers add ~0.1 s per step).

    .venv/bin/python bench/pipeline_bench.py [--users 100000]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TOPOLOGY = """\
tenants:
  big:
    tenant_id: 00000000-0000-0000-0001-000000000001
    domain: big.onmicrosoft.com
    client_id: 00000000-0000-0000-0001-000000000002
    app_object_id: 00000000-0000-0000-0001-000000000003
    credential: {env: XTS_SECRET_BIG}
  small:
    tenant_id: 00000000-0000-0000-0002-000000000001
    domain: small.onmicrosoft.com
    client_id: 00000000-0000-0000-0002-000000000002
    app_object_id: 00000000-0000-0000-0002-000000000003
    credential: {env: XTS_SECRET_SMALL}
topology:
  - pair: {source: big, target: small}
    scope: {all_members: true}
"""


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cycle(db: str, topo, clients, cycle_id: str) -> dict[str, float]:
    from assets.sync import pair_spec
    from xts_pipeline import desired, extract, planner, staging

    pair = topo.pair("big__small")
    t: dict[str, float] = {}
    s = time.perf_counter()
    res = extract.extract_source_users(db, "big", clients["big"], cycle_id,
                                       extra_select=sorted(pair.mappings.source_attributes))
    t["extract"] = time.perf_counter() - s
    s = time.perf_counter()
    staging.stage_tenant(db, "big", topo.staging.max_reject_fraction)
    t["stage"] = time.perf_counter() - s
    s = time.perf_counter()
    extract.snapshot_target(db, "small", clients["small"], topo.tenant("small").client_id,
                            [("big", topo.tenant("big").tenant_id)], app_object_id=topo.tenant("small").app_object_id)
    t["snapshot"] = time.perf_counter() - s
    from xts_pipeline import store

    with store.connect(db) as con:  # the applied users the sandbox target does not hold (see simulate_apply)
        if con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'bench_targets'").fetchone()[0]:
            con.execute("INSERT OR REPLACE INTO target_users SELECT * FROM bench_targets")
    s = time.perf_counter()
    desired.compute_desired(db, pair, topo.tenant("big").tenant_id)
    t["desired"] = time.perf_counter() - s
    s = time.perf_counter()
    summary = planner.plan_pair(db, pair_spec(topo, pair.key), cycle_id)
    t["plan"] = time.perf_counter() - s
    t["total"] = sum(t.values())
    print(f"  {cycle_id}: {res.mode} delta, {res.upserted} users read, plan {summary.counts}")
    return t


def simulate_apply(db: str, pair_key: str) -> None:
    """Record the full plan as applied (links + watermark) without 97k Graph writes: the incremental cycle
    then starts from a converged pair, as it would in production. Write throughput is the Graph client's
    bench, not this one."""
    from xts_pipeline import planner, store

    with store.connect(db) as con:
        con.execute("""INSERT OR REPLACE INTO links (pair_key, source_tenant_id, source_object_id, target_tenant,
                         target_user_id, state, linked_at, deleted_at, applied)
                       SELECT pair_key, source_tenant_id, source_object_id, 'small', 'simulated-' || source_object_id,
                         'active', now(), NULL, desired_update FROM desired_users WHERE pair_key = ?""", [pair_key])
        # The simulated B2B users as the target would hold them (the sandbox does not: no writes were sent).
        con.execute("""CREATE OR REPLACE TABLE bench_targets AS
                       SELECT 'small' AS tenant, 'simulated-' || source_object_id AS id, user_principal_name,
                         mail, display_name, 'Member' AS user_type, 'Invitation' AS creation_type,
                         'Accepted' AS external_user_state, account_enabled, source_tenant_id, source_object_id,
                         pair_key, desired_update AS attrs FROM desired_users WHERE pair_key = ?""", [pair_key])
        planner.mark_applied(con, pair_key)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--changed", type=int, default=100)
    args = ap.parse_args()
    from assets.resources import graph_resources, load_topology
    from xts_pipeline.sandbox.process import SandboxProcess

    root = Path(tempfile.mkdtemp(prefix="xts-bench-"))
    state = root / "sandbox"
    s = time.perf_counter()
    for name, n in (("big", args.users), ("small", 50)):
        subprocess.run([sys.executable, "-m", "xts_pipeline.cli", "sandbox", "seed", "--state", str(state),
                        "--tenant", name, "--users", str(n)], check=True, capture_output=True, cwd=REPO)
    print(f"seeded {args.users} + 50 users in {time.perf_counter() - s:.1f} s ({root})")
    cfg = root / "topology.yaml"
    cfg.write_text(textwrap.dedent(TOPOLOGY))
    db = str(root / "bench.duckdb")
    with SandboxProcess(state, seed=None) as sb:
        big_tid = next(t["tenant_id"] for t in sb.info["tenants"] if t["name"] == "big")
        sb.admin("PUT", f"/tenants/small/partners/{big_tid}", json={
            "tenantId": big_tid, "identitySynchronization": {"userSyncInbound": {"isSyncAllowed": True}}})
        topo = load_topology(str(cfg), str(state))
        clients = {k.removeprefix("graph_"): r.client() for k, r in graph_resources(str(cfg), str(state)).items()}
        full = cycle(db, topo, clients, "full")
        simulate_apply(db, "big__small")
        users = sb.admin("GET", "/tenants/big/users")["value"]
        members = [u for u in users if u["userType"] == "Member"][: args.changed]
        s = time.perf_counter()
        for i, u in enumerate(members):
            sb.admin("PATCH", f"/tenants/big/users/{u['id']}", json={"jobTitle": f"Bench Title {i}"})
        print(f"changed {len(members)} source users in {time.perf_counter() - s:.1f} s")
        incr = cycle(db, topo, clients, "incremental")
        sandbox_rss = _proc_rss_mb(sb.proc.pid) if sb.proc else float("nan")
    esp_full = full["extract"] + full["stage"] + full["plan"]
    print("\nstep         full (s)   incremental (s)")
    for k in ("extract", "stage", "snapshot", "desired", "plan", "total"):
        print(f"{k:<12} {full[k]:>8.2f}   {incr[k]:>8.2f}")
    peak = rss_mb()
    print(f"\nextract+stage+plan, full:        {esp_full:6.1f} s  limit 60 s   ratio {esp_full / 60:.2f}")
    print(f"extract+stage+desired+plan, full: {esp_full + full['desired']:6.1f} s")
    print(f"incremental / full (whole cycle): {incr['total'] / full['total']:.3f}  limit 0.10   "
          f"ratio {incr['total'] / full['total'] / 0.10:.2f}")
    print(f"peak RSS (pipeline process):      {peak:6.0f} MB limit 2048 MB ratio {peak / 2048:.2f}")
    print(f"sandbox RSS at the end:           {sandbox_rss:6.0f} MB (separate process, for context)")
    return 0


def _proc_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


if __name__ == "__main__":
    sys.exit(main())
