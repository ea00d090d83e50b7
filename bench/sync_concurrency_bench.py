"""Sync-concurrency bench: one `xts sync` cycle of a multi-target topology, targets one after another vs
at the same time, against the sandbox's documented throttling.

Topology: one hub source published to two targets (`hub_outbound`), every member in scope, so each target
receives the same merger bulk load: one create (POST /invitations + PATCH = 2 writes) per member. Graph
lets one app write 3,000 times per 150 s into one tenant; the first window starts empty, so a target's
first 3,000 writes go at once and the rest wait for the window to slide. With more than 1,500 creates per
target the write budget is what a cycle waits on, and each target has its own budget: run sequentially,
the waits add up; run concurrently, they overlap. `--time-scale` runs the sandbox clock faster (150 s window
= 150/scale real seconds) so a bench takes minutes, not hours; `--rtt-ms` adds a sandbox-side delay to
every answer (sandbox milliseconds, divided by the scale in real time) as Graph's ~100 ms round trip.

Each mode starts from its own copy of the same seeded sandbox, a fresh DuckDB file and a fresh Dagster
instance with the committed dagster.yaml, and runs `assets.cycle.sync_in_process` (what `xts sync` runs).

    .venv/bin/python bench/sync_concurrency_bench.py [--users 2000] [--time-scale 5] [--rtt-ms 0]
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

WRITES, WINDOW = 3000, 150.0  # documented per app and tenant (xts_pipeline/sandbox/throttle.py)
TARGETS = ("t1", "t2")


def _tenant_yaml(name: str, n: int) -> str:
    """One tenant's entry: tenant, client and app object ids 00000000-0000-0000-{n:04d}-00000000000{1,2,3}."""
    guid = f"00000000-0000-0000-{n:04d}-00000000000"
    return (f"  {name}:\n    tenant_id: {guid}1\n    domain: {name}.onmicrosoft.com\n    client_id: {guid}2\n"
            f"    app_object_id: {guid}3\n    credential: {{env: XTS_SECRET_{name.upper()}}}\n")


TOPOLOGY = "tenants:\n" + "".join(_tenant_yaml(t, i) for i, t in enumerate(("hub", *TARGETS), 1)) + """\
topology:
  - hub_outbound: {hub: hub, spokes: [t1, t2]}
    scope: {all_members: true}
inbound_policies:
  t1: &bulk
    allowed_sources: [hub]
    volume: {max_creates_per_cycle: 100000, max_creates_pct_of_target: null,   # a deliberate bulk load
             max_creates_window_pct_of_members: null, max_b2b_pct_of_members: null}
    # generated names may resemble a target's admins: the guardrails have their own tests and benches
    impersonation: {include_role_assignable_group_members: false, include_directory_role_holders: false}
    privilege: {treat_role_assignable_as_privileged: false}
  t2: *bulk
"""


def run_mode(root: Path, template: Path, workers: int, scale: float, rtt_ms: float) -> dict:
    """One full cycle from a fresh copy of the seeded sandbox; wall time, per-pair figures, run spans."""
    import dagster as dg

    from assets.cycle import sync_in_process
    from xts_pipeline.sandbox.process import SandboxProcess

    state, home = root / "sandbox", root / "dagster_home"
    shutil.copytree(template, state)
    home.mkdir(parents=True)
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    cfg = root / "topology.yaml"
    cfg.write_text(textwrap.dedent(TOPOLOGY))
    db = str(root / "xts.duckdb")
    faults = f"latency_ms={rtt_ms / scale:g}" if rtt_ms else None
    with SandboxProcess(state, seed=None, throttle="documented", time_scale=scale, faults=faults) as sb:
        hub = sb.tenant("hub")["tenant_id"]
        for t in TARGETS:
            sb.admin("PUT", f"/tenants/{t}/partners/{hub}", json={
                "tenantId": hub, "identitySynchronization": {"userSyncInbound": {"isSyncAllowed": True}}})
        start = time.perf_counter()
        outcomes = sync_in_process(cfg, str(state), db, None, dry_run=False, workers=workers)
        wall = time.perf_counter() - start
    with dg.DagsterInstance.get() as inst:
        recs = inst.get_run_records()
    t0 = min(r.start_time for r in recs)
    spans = {f"{r.dagster_run.job_name.removesuffix('_job')} {r.dagster_run.tags['dagster/partition']}":
             (r.start_time - t0, r.end_time - t0) for r in recs}
    return {"wall": wall, "outcomes": outcomes, "spans": spans}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=2000, help="hub tenant size (most are members: all in scope)")
    ap.add_argument("--target-users", type=int, default=40)
    ap.add_argument("--time-scale", type=float, default=5.0)
    ap.add_argument("--rtt-ms", type=float, default=0.0, help="emulated round trip, sandbox ms")
    ap.add_argument("--workers", type=int, default=4, help="worker processes of the concurrent run")
    args = ap.parse_args()
    from xts_pipeline.vocabulary import shown_pair

    root = Path(tempfile.mkdtemp(prefix="xts-sync-conc-bench-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)  # sandbox states, stores and instances
    template = root / "seeded"
    for i, (name, n) in enumerate((("hub", args.users), *((t, args.target_users) for t in TARGETS))):
        subprocess.run([sys.executable, "-m", "xts_pipeline.cli", "sandbox", "seed", "--state", str(template),
                        "--tenant", name, "--users", str(n), "--seed", str(i)], check=True, capture_output=True,
                       cwd=REPO)
    scale = args.time_scale
    print(f"topology: hub ({args.users} users) -> {', '.join(TARGETS)} ({args.target_users} users each); "
          f"sandbox: documented throttling, time scale {scale:g} (150 s write window = {WINDOW / scale:.0f} s "
          f"real), emulated RTT {args.rtt_ms:g} ms; {root}")
    res = {}
    for mode, workers in (("sequential", 1), ("concurrent", args.workers)):
        res[mode] = run_mode(root / mode, template, workers, scale, args.rtt_ms)
        print(f"\n{mode} (workers={workers}): {res[mode]['wall']:.1f} s")
        for name, (s, e) in sorted(res[mode]["spans"].items(), key=lambda kv: kv[1]):
            print(f"  {name:<20} {s:6.1f} -> {e:6.1f} s")
        for o in res[mode]["outcomes"]:
            problems = [*o.errors, *o.failed_checks]
            print(f"  {shown_pair(o.pair_key)}: {o.counts['creates']} creates, "
                  f"{o.counts['failures']} failures" + (f"; {problems[0].splitlines()[0]}" if problems else ""))
    creates = max(o.counts["creates"] for o in res["sequential"]["outcomes"])
    writes = 2 * creates
    # What the budget alone costs one target: write n+3000 can't go until 150 s after write n.
    bound = (writes - 1) // WRITES * WINDOW / scale
    seq, conc = res["sequential"]["wall"], res["concurrent"]["wall"]
    print(f"\nper target: {creates} creates = {writes} writes; the write budget alone needs >= {bound:.1f} s "
          f"per target (so >= {len(TARGETS) * bound:.1f} s one target after another, >= {bound:.1f} s together)")
    print(f"sequential {seq:.1f} s, concurrent {conc:.1f} s, ratio sequential/concurrent {seq / conc:.2f}x")
    ok = all(not (o.errors or o.failed_checks) for r in res.values() for o in r["outcomes"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
