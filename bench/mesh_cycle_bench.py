"""Mesh cycle bench: what `xts sync` costs on a full mesh of N tenants (N x (N-1) pairs), and how that grows.

One process tree: this script seeds N small sandbox tenants (default 10 x 40 users), allows every pair in
the targets' partner policies, writes a `mesh:` topology over them, and runs `xts sync --config <it>
--sandbox <state>` as its own process three times against one store and one Dagster instance: a first cycle
(every pair creates its users), a cycle with no change, and one after a single source user was edited.

Printed: each cycle's wall time, the runs it launched (from the instance), and the no-change and one-change
cycles as ratios of the first, for information (docs/pipeline.md, "How the cost grows"); the load average.
Exits 1 when a cycle fails, or when the one-change cycle runs no pair (the change probe missed a change).

    .venv/bin/python bench/mesh_cycle_bench.py [--tenants 10] [--users 40] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.cycle_bench import ENV_CLEARED, cycle_id, run_spans, sync_once  # noqa: E402


def topology(names: list[str]) -> dict:
    """A full mesh over the seeded tenants (the sandbox overlay puts in their real ids and secrets)."""
    tenants = {n: {"tenant_id": f"00000000-0000-0000-{i:04d}-000000000001", "domain": f"{n}.onmicrosoft.com",
                   "client_id": f"00000000-0000-0000-{i:04d}-000000000002",
                   "app_object_id": f"00000000-0000-0000-{i:04d}-000000000003",
                   "credential": {"env": f"XTS_SECRET_{n.upper()}"}} for i, n in enumerate(names, 1)}
    # The seed reuses names across tenants, and each 40-user tenant takes 9 x 40 new users in its first cycle
    # (the flood the volume caps exist for): the guardrails that would hold them have their own benches and
    # tests; here every pair must end clean for its later cycles to be measured.
    policy = {"volume": {"max_creates_pct_of_target": None, "max_creates_window_pct_of_members": None},
              "impersonation": {"include_role_assignable_group_members": False, "include_directory_role_holders": False},
              "privilege": {"treat_role_assignable_as_privileged": False}}
    return {"tenants": tenants, "topology": [{"mesh": names, "scope": {"all_members": True}}],
            "inbound_policies": {n: {**policy, "allowed_sources": [m for m in names if m != n]} for n in names}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tenants", type=int, default=10)
    ap.add_argument("--users", type=int, default=40)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, instance, store)")
    args = ap.parse_args()
    from xts_pipeline.sandbox.process import SandboxProcess

    root = Path(tempfile.mkdtemp(prefix="xts-mesh-bench-"))
    state, home, cfg = root / "sandbox", root / "dagster_home", root / "mesh.yaml"
    home.mkdir(parents=True)
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    names = [f"mesh{i:02d}" for i in range(args.tenants)]
    for i, name in enumerate(names):
        subprocess.run([sys.executable, "-m", "xts_pipeline.cli", "sandbox", "seed", "--state", str(state),
                        "--tenant", name, "--users", str(args.users), "--seed", str(i)], check=True,
                       capture_output=True, cwd=REPO)
    cfg.write_text(yaml.safe_dump(topology(names), sort_keys=False))
    env = {k: v for k, v in os.environ.items() if k not in ENV_CLEARED}
    env.update(DAGSTER_HOME=str(home), XTS_DUCKDB=str(root / "xts.duckdb"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])))
    pairs = len(names) * (len(names) - 1)
    try:
        with SandboxProcess(state, seed=None) as sb:
            tids = {t["name"]: t["tenant_id"] for t in sb.info["tenants"]}
            for dst in names:
                for src in names:
                    if src != dst:
                        sb.admin("PUT", f"/tenants/{dst}/partners/{tids[src]}", json={
                            "tenantId": tids[src], "identitySynchronization": {
                                "tenantId": tids[src], "userSyncInbound": {"isSyncAllowed": True}}})
            print(f"mesh: {len(names)} tenants x {args.users} users, {pairs} pairs; instance {home}", flush=True)
            extra = ["--config", str(cfg)]
            first, rc1, out1 = sync_once(state, env, root / "first.log", extra)
            print(f"first cycle      {first:7.1f} s  (exit {rc1})", flush=True)
            again, rc2, out2 = sync_once(state, env, root / "no-change.log", extra)
            print(f"no-change cycle  {again:7.1f} s  (exit {rc2})", flush=True)
            user = next(u for u in sb.admin("GET", f"/tenants/{names[0]}/users")["value"]
                        if u.get("userType") == "Member" and not u.get("creationType"))
            sb.admin("PATCH", f"/tenants/{names[0]}/users/{user['id']}", json={"jobTitle": "Mesh Bench Edit"})
            change, rc3, out3 = sync_once(state, env, root / "one-change.log", extra)
            print(f"one-change cycle {change:7.1f} s  (exit {rc3}; one {names[0]} member edited)", flush=True)
        runs = run_spans(home)
        outputs = {"first": out1, "no-change": out2, "one-change": out3}
        for label, out in outputs.items():
            spans = runs.get(cycle_id(out), [])
            kinds = {k: sum(1 for n, _ in spans if n.startswith(k)) for k in ("source", "target", "pair_sync")}
            print(f"  {label} cycle: {len(spans)} runs ({kinds['source']} source, {kinds['target']} target, "
                  f"{kinds['pair_sync']} pair), {sum(d for _, d in spans):.1f} s of run time")
        failed = [n for n, rc in (("first", rc1), ("no-change", rc2), ("one-change", rc3)) if rc != 0]
        ran = [n for n, _ in runs.get(cycle_id(out3), []) if n.startswith("pair_sync ")]
        for name in failed:
            print(f"\n{name} cycle failed; its last lines:\n" + "\n".join(outputs[name].strip().splitlines()[-15:]))
        if not ran:
            failed.append("one-change")
            print("the edited user's pairs did not run: the change probe missed a change")
        print(f"no-change / first: {again / first:.3f}; one-change / first: {change / first:.3f}; "
              f"{again / pairs * 1000:.0f} ms a pair with nothing to do  (for information; load average "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())})")
        return 1 if failed else 0
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
