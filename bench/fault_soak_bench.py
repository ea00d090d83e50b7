"""Fault soak: whole `xts sync` cycles under Graph faults write each change exactly once.

Two worlds from one seed (about 300 source users into a small target, a real sandbox, `xts sync` in its own
process): one without faults, one with 30 % 429s, 5 % 5xx and 1 % connection resets on every write. Each
runs cycles until one has nothing left to write, then a round of source changes and cycles again, and is
judged from Graph state (every in-scope user linked once, current, with its manager; no duplicate).

Printed: the writes that landed on the target (the sandbox's change log: one event per invitation, PATCH,
manager reference or delete that took effect) in each world, and their same-run ratio, which must be
1.00 (no write lost, none duplicated). A ratio above 1.00 prints MISS.

    .venv/bin/python bench/fault_soak_bench.py [--users 300]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

FAULTS = "kind=write,429=0.3,5xx=0.05,reset=0.01"
# The volume caps would hold a first load of a few hundred users into a 5-user target for an approval;
# the soak measures the writer, so they are lifted here (the guardrails have their own bench).
VOLUME = ("volume: {max_creates_pct_of_target: null, max_creates_window_pct_of_members: null, "
          "max_b2b_pct_of_members: null}")


def landed_writes(trial, tenant: str) -> int:
    """Change events of the target tenant in the sandbox's own state (read-only)."""
    tid = next(t["tenant_id"] for t in trial.sb.info["tenants"] if t["name"] == tenant)
    con = sqlite3.connect(f"file:{trial.state / 'sandbox.sqlite3'}?mode=ro", uri=True)
    try:
        return con.execute("SELECT count(*) FROM changes WHERE tenant_id = ?", [tid]).fetchone()[0]
    finally:
        con.close()


def soak(root: Path, users: int, faults: str | None) -> dict[str, float]:
    from tests.crash_trials import Trial
    from tests.e2e_world import DST, TOPOLOGY

    topology = TOPOLOGY.replace("volume: {max_creates_pct_of_target: null}", VOLUME)
    assert VOLUME in topology, "tests/e2e_world.TOPOLOGY changed its volume line"
    trial = Trial(root, src_users=users, topology=topology)
    try:
        base = landed_writes(trial, DST)
        trial.faults(faults)
        start = time.perf_counter()
        trial.converge(runs=4)
        for i, u in enumerate(list(trial.in_scope().values())[: users // 5]):
            trial.patch_source(u["id"], {"jobTitle": f"Soak Title {i}"})
        trial.converge(runs=4)
        elapsed = time.perf_counter() - start
        trial.faults(None)
        verdict = trial.judge()
        return {"writes": landed_writes(trial, DST) - base, "seconds": elapsed, "runs": len(trial.runs),
                **verdict}
    finally:
        trial.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=300)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="xts-soak-") as tmp:
        clean = soak(Path(tmp) / "clean", args.users, None)
        faulty = soak(Path(tmp) / "faults", args.users, FAULTS)
    ratio = faulty["writes"] / clean["writes"]
    for name, r in (("no faults", clean), (f"faults {FAULTS}", faulty)):
        print(f"{name:<52} {r['writes']:>6} writes landed, {r['linked']} linked, {r['managers']} managers, "
              f"{r['runs']} xts sync runs, {r['seconds']:.0f} s")
    print(f"writes per change under faults / without: {ratio:.3f}  goal 1.000  {'ok' if ratio <= 1.0 else 'MISS'}")
    return 0 if ratio <= 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
