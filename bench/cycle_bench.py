"""Cycle bench: what a sync cycle with nothing to do costs, against a first cycle of the same demo.

One process tree: this script starts the embedded Graph sandbox with the demo seed (5 pairs, about 2,800
users) in a fresh state directory, a fresh Dagster instance (the committed dagster.yaml) and a fresh store,
then runs `xts sync --sandbox <state>` twice as its own process, as a user types it: a first cycle, then a
cycle with no source change against the same store and instance, then a third one (steady state: the
second cycle still reads back, in its delta rounds and snapshots, what the first one wrote), and a fourth
after one source user that a pair synced was edited (it must run that user's pairs: a cycle that runs no pair
is reported as a failure, since the change probe missed a change). Each cycle's wall time includes the
command's start-up (imports, definitions), as the user waits for it.

Printed: the times, the runs each cycle launched (from the instance, with their summed durations), the
ratio no-change / first, the goal (<= 0.10) and `ok` or `MISS` (exit 1 on MISS or on a failed cycle), the
steady and one-change cycles' ratios for information, and the load average.

    .venv/bin/python bench/cycle_bench.py [--keep]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

GOAL = 0.10
ENV_CLEARED = ("XTS_CONFIG", "XTS_DUCKDB", "XTS_SANDBOX", "XTS_HOME", "XTS_SYNC_WORKERS", "XTS_SYNC_START")


def sync_once(state: Path, env: dict[str, str], log: Path, extra: list[str] | None = None) -> tuple[float, int, str]:
    """One `xts sync --sandbox <state> [extra]` in its own process: (wall seconds, exit code, output)."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "xts_pipeline.cli", "sync", "--sandbox", str(state), *(extra or [])],
                          cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - start
    out = proc.stdout + proc.stderr
    log.write_text(out)
    return wall, proc.returncode, out


def cycle_id(out: str) -> str:
    """The cycle id `xts sync` printed ("cycle cli-... took"), which tags every run of that cycle."""
    m = re.search(r"cycle (cli-\S+) took", out)
    return m.group(1) if m else "?"


def edit_one_synced_user(sb) -> str:
    """Change one source user that a pair has synced (found by its link on a target user): the next cycle must
    run that pair (and its two tenant runs) and skip the others."""
    tids = {t["tenant_id"]: t["name"] for t in sb.info["tenants"]}
    for target in sorted(tids.values()):
        for u in sb.admin("GET", f"/tenants/{target}/users")["value"]:
            src_tid = next((v for k, v in u.items() if k.endswith("_xtsSourceTenantId")), None)
            src_id = next((v for k, v in u.items() if k.endswith("_xtsSourceObjectId")), None)
            if src_tid in tids and src_id:
                sb.admin("PATCH", f"/tenants/{tids[src_tid]}/users/{src_id}", json={"jobTitle": "Cycle Bench Edit"})
                return f"jobTitle of a {tids[src_tid]} user synced into {target} edited"
    raise RuntimeError("no synced user found after the first cycle")


def run_spans(home: Path) -> dict[str, list[tuple[str, float]]]:
    """Runs in the instance by CLI cycle: (job partition, seconds) in start order."""
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    by_cycle: dict[str, list[tuple[float, str, float]]] = {}
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as inst:
        for r in inst.get_run_records():
            run = r.dagster_run
            name = f"{run.job_name.removesuffix('_job')} {run.tags.get('dagster/partition', '')}"
            dur = (r.end_time or r.start_time or 0) - (r.start_time or 0)
            by_cycle.setdefault(run.tags.get("xts/cycle", "?"), []).append((r.start_time or 0, name, dur))
    return {c: [(n, d) for _, n, d in sorted(v)] for c, v in sorted(by_cycle.items())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, instance, store)")
    args = ap.parse_args()
    from xts_pipeline.sandbox.process import SandboxProcess

    root = Path(tempfile.mkdtemp(prefix="xts-cycle-bench-"))
    state, home = root / "sandbox", root / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if k not in ENV_CLEARED}
    env.update(DAGSTER_HOME=str(home), PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])))
    try:
        with SandboxProcess(state, seed="demo") as sb:
            tenants = ", ".join(f"{t['name']} ({t.get('user_count', '?')})" for t in sb.info["tenants"])
            print(f"demo sandbox: {tenants}; instance {home}", flush=True)
            first, rc1, out1 = sync_once(state, env, root / "first.log")
            print(f"first cycle      {first:7.1f} s  (exit {rc1})", flush=True)
            again, rc2, out2 = sync_once(state, env, root / "no-change.log")
            print(f"no-change cycle  {again:7.1f} s  (exit {rc2})", flush=True)
            steady, rc3, out3 = sync_once(state, env, root / "steady.log")
            print(f"steady cycle     {steady:7.1f} s  (exit {rc3})", flush=True)
            edited = edit_one_synced_user(sb)
            change, rc4, out4 = sync_once(state, env, root / "one-change.log")
            print(f"one-change cycle {change:7.1f} s  (exit {rc4}; {edited})", flush=True)
        runs = run_spans(home)
        outputs = {"first": out1, "no-change": out2, "steady": out3, "one-change": out4}
        cycles = {label: runs.get(cycle_id(out), []) for label, out in outputs.items()}
        for label, spans in cycles.items():
            total = sum(d for _, d in spans)
            print(f"  {label} cycle {cycle_id(outputs[label])}: {len(spans)} runs, {total:.1f} s of run time"
                  + (": " + ", ".join(f"{n} {d:.1f}" for n, d in spans) if spans else ""))
        failed = [(n, rc, out) for n, rc, out in (("first", rc1, out1), ("no-change", rc2, out2), ("steady", rc3, out3),
                                                  ("one-change", rc4, out4)) if rc != 0]
        if not any(n.startswith("pair_sync ") for n, _ in cycles["one-change"]):
            failed.append(("one-change", 0, "the edited user's pairs did not run: the change probe missed a change"))
        for name, rc, out in failed:
            print(f"\n{name} cycle exited {rc}; its last lines:\n" + "\n".join(out.strip().splitlines()[-15:]))
        ratio = again / first
        verdict = "ok" if ratio <= GOAL and not failed else "MISS"
        print(f"no-change / first: {ratio:.3f}  goal <= {GOAL:.2f}  {verdict}")
        print(f"steady / first: {steady / first:.3f}; one-change / first: {change / first:.3f}  "
              f"(load average {' '.join(f'{x:.2f}' for x in os.getloadavg())})")
        return 0 if verdict == "ok" else 1
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
