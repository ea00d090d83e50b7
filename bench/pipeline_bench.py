"""Pipeline bench: a 100,000-user source into one target, over the sandbox's real HTTPS.

Prints, for a full cycle and for an incremental one with 100 changed users:
extract (Graph delta -> DuckDB), stage (pandera), snapshot (target), desired (scoping + mappings),
plan (DuckDB SQL); then every goal with its figure, ratio and ok/MISS, and exits 1 on a MISS:
- extract + stage + desired + plan, full: <= 20 s, and never over 60 s;
- incremental / full (whole cycle) <= 0.10; peak RSS of this process <= 1.5 GB;
- extraction within 2x the bare client's streaming of the same users, same run: the bare GraphClient reads the
  same tenant with the same delta request (same $select, manager included) once before and once after the full
  cycle, and the extraction is compared with their mean. A plain GET /users listing is printed for context.
Runs the library functions the Dagster assets wrap (the wrappers add ~0.1 s per step).

    .venv/bin/python bench/pipeline_bench.py [--users 100000] [--keep]   (the temporary directory goes unless --keep)
"""

from __future__ import annotations

import argparse
import resource
import shutil
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


SUM_GOAL_S = 20.0
SUM_LIMIT_S = 60.0
INCREMENTAL_GOAL = 0.10
RSS_GOAL_MB = 1536.0
BARE_RATIO_GOAL = 2.0


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bare_stream(client, select: list[str], listing: bool = False) -> tuple[int, float]:
    """The bare client's streaming of the tenant (pages looked at and dropped): (users, seconds)."""
    s = time.perf_counter()
    pages = client.iter_users([x for x in select if x != "manager"], top=999) if listing else \
        client.delta_users(select=select)
    n = sum(len(page) for page in pages)
    return n, time.perf_counter() - s


def goal(label: str, figure: float, limit: float, unit: str, misses: list[str]) -> None:
    ok = figure <= limit
    if not ok:
        misses.append(label)
    print(f"{label:<44} {figure:9.2f} {unit:<3} limit {limit:7.2f} {unit:<3} ratio {figure / limit:5.2f}  "
          f"{'ok' if ok else 'MISS'}")


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
                       SELECT d.pair_key, d.source_tenant_id, d.source_object_id, 'small',
                         'simulated-' || d.source_object_id, 'active', now(), NULL,
                         CASE WHEN m.source_object_id IS NULL THEN d.desired_update ELSE json_merge_patch(
                           d.desired_update, json_object('manager', 'simulated-' || m.source_object_id)) END
                       FROM desired_users d JOIN staged_users s ON s.tenant = 'big' AND s.id = d.source_object_id
                       LEFT JOIN desired_users m ON m.pair_key = d.pair_key
                         AND m.source_object_id = json_extract_string(s.attrs, '$.manager.id')
                       WHERE d.pair_key = ?""", [pair_key])
        # The simulated B2B users as the target would hold them (the sandbox does not: no writes were sent).
        con.execute("""CREATE OR REPLACE TABLE bench_targets AS
                       SELECT 'small' AS tenant, 'simulated-' || d.source_object_id AS id, d.user_principal_name,
                         d.mail, d.display_name, 'Member' AS user_type, 'Invitation' AS creation_type,
                         'Accepted' AS external_user_state, d.account_enabled, d.source_tenant_id, d.source_object_id,
                         d.pair_key, CASE WHEN json_extract_string(l.applied, '$.manager') IS NULL THEN d.desired_update
                           ELSE json_merge_patch(d.desired_update, json_object('manager', json_object(
                             'id', json_extract_string(l.applied, '$.manager')))) END AS attrs
                       FROM desired_users d JOIN links l ON l.pair_key = d.pair_key
                         AND l.source_object_id = d.source_object_id
                       WHERE d.pair_key = ?""", [pair_key])
        planner.mark_applied(con, pair_key)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--changed", type=int, default=100)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (sandbox state, store)")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="xts-bench-"))
    try:
        return run(args, root)
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)  # ~0.8 GB of sandbox state and store per run


def run(args: argparse.Namespace, root: Path) -> int:
    from assets.resources import graph_resource, load_topology
    from xts_pipeline.sandbox.process import SandboxProcess

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
        graph = graph_resource(str(cfg), str(state))
        clients = {name: graph.client(name) for name in graph.tenants}
        from xts_pipeline import extract

        pair = topo.pair("big__small")
        select = list(dict.fromkeys([*extract.SOURCE_SELECT, *sorted(pair.mappings.source_attributes),
                                     extract.MANAGER_SELECT]))
        clients["big"].tokens.token()
        bare_before = bare_stream(clients["big"], select)
        full = cycle(db, topo, clients, "full")
        bare_after = bare_stream(clients["big"], select)
        listing = bare_stream(clients["big"], select, listing=True)
        simulate_apply(db, "big__small")
        users = sb.admin("GET", "/tenants/big/users")["value"]
        members = [u for u in users if u["userType"] == "Member"][: args.changed]
        s = time.perf_counter()
        for i, u in enumerate(members):
            sb.admin("PATCH", f"/tenants/big/users/{u['id']}", json={"jobTitle": f"Bench Title {i}"})
        print(f"changed {len(members)} source users in {time.perf_counter() - s:.1f} s")
        incr = cycle(db, topo, clients, "incremental")
        sandbox_rss = _proc_rss_mb(sb.proc.pid) if sb.proc else float("nan")
    print("\nstep         full (s)   incremental (s)")
    for k in ("extract", "stage", "snapshot", "desired", "plan", "total"):
        print(f"{k:<12} {full[k]:>8.2f}   {incr[k]:>8.2f}")
    bare_s = (bare_before[1] + bare_after[1]) / 2
    print(f"\nbare client, same delta request ({bare_before[0]} users): {bare_before[1]:.2f} s before the full cycle, "
          f"{bare_after[1]:.2f} s after, mean {bare_s:.2f} s")
    print(f"bare client, GET /users listing ({listing[0]} users, context): {listing[1]:.2f} s; "
          f"extraction / listing {full['extract'] / listing[1]:.2f}")
    core = full["extract"] + full["stage"] + full["desired"] + full["plan"]
    peak = rss_mb()
    misses: list[str] = []
    print()
    goal("extract+stage+desired+plan, full", core, SUM_GOAL_S, "s", misses)
    goal("extract+stage+desired+plan, full (never)", core, SUM_LIMIT_S, "s", misses)
    goal("incremental / full (whole cycle)", incr["total"] / full["total"], INCREMENTAL_GOAL, "", misses)
    goal("peak RSS (pipeline process)", peak, RSS_GOAL_MB, "MB", misses)
    goal("extraction / bare client (same run)", full["extract"] / bare_s, BARE_RATIO_GOAL, "x", misses)
    print(f"sandbox RSS at the end: {sandbox_rss:.0f} MB (separate process, for context)")
    if misses:
        print(f"MISS: {', '.join(misses)}")
        return 1
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
