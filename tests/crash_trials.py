"""A kill-trial harness: a real sandbox, `xts sync` in its own process group (SIGKILLed at a chosen moment),
then runs to completion, judged from Graph state alone.

Seeded: XTS_TRIAL_SEED (default 7) picks the seeded tenants and the kill points, so a failing trial can be
replayed with the same seed. Each trial is small (about 100 source users) to keep it quick.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e_world import DST, PAIR, SRC, TENANTS_AND_PAIR, TOPOLOGY, seed
from xts_pipeline import store
from xts_pipeline.sandbox.process import SandboxProcess

REPO = Path(__file__).resolve().parents[1]
TRIAL_SEED = int(os.environ.get("XTS_TRIAL_SEED", "7"))
# A per-user hold for the "follow-up write held by a guardrail" trial: jobTitle HOLD-ME blocks that user.
HOLD_TITLE = "HOLD-ME"
HELD_TOPOLOGY = TENANTS_AND_PAIR + f"""\
inbound_policies:
  dst:
    allowed_sources: [src]
    volume: {{max_creates_pct_of_target: null}}
    impersonation: {{include_role_assignable_group_members: false, include_directory_role_holders: false}}
    privilege: {{treat_role_assignable_as_privileged: false}}
    attribute_policy:
      jobTitle: {{deny_patterns: ["{HOLD_TITLE}"]}}
"""


def ext(u: dict, short: str) -> str | None:
    return next((v for k, v in u.items() if k.endswith("_" + short)), None)


def active(u: dict) -> bool:
    return u.get("_state", 0) in (0, "active")


@dataclass
class Trial:
    root: Path
    seed_no: int = TRIAL_SEED
    src_users: int = 100
    topology: str = TOPOLOGY
    runs: list[tuple[str, int | None]] = field(default_factory=list)  # (what, exit code or None if killed)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed_no)
        self.state = self.root / "sandbox"
        seed(self.state, SRC, self.src_users, self.seed_no)
        seed(self.state, DST, 5, self.seed_no + 1)
        self.sb = SandboxProcess(self.state, seed=None).start()
        self.cfg = self.root / "topology.yaml"
        self.cfg.write_text(textwrap.dedent(self.topology))
        self.home = self.root / "dagster_home"
        self.home.mkdir()
        (self.home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        self.db = str(self.root / "xts.duckdb")
        src = next(t["tenant_id"] for t in self.sb.info["tenants"] if t["name"] == SRC)
        self.sb.admin("PUT", f"/tenants/{DST}/partners/{src}", json={
            "tenantId": src, "identitySynchronization": {"tenantId": src, "userSyncInbound": {"isSyncAllowed": True}}})

    def stop(self) -> None:
        self.sb.stop()

    # --- the world ------------------------------------------------------------------------------------
    def source(self) -> list[dict]:
        return self.sb.admin("GET", f"/tenants/{SRC}/users")["value"]

    def target(self) -> list[dict]:
        return self.sb.admin("GET", f"/tenants/{DST}/users?include_deleted=true")["value"]

    def in_scope(self) -> dict[str, dict]:
        return {u["id"]: u for u in self.source()
                if u["userType"] == "Member" and u.get("creationType") != "Invitation"
                and u.get("department") != "Legal" and u.get("accountEnabled", True)}  # disabled: never provisioned

    def patch_source(self, uid: str, body: dict) -> None:
        self.sb.admin("PATCH", f"/tenants/{SRC}/users/{uid}", json=body)

    def faults(self, spec: str | None) -> None:
        self.sb.admin("PUT", "/faults", json={"spec": spec, "seed": self.seed_no})

    def invited(self) -> list[dict]:
        return [u for u in self.target() if active(u) and u.get("creationType") == "Invitation"]

    # --- runs -----------------------------------------------------------------------------------------
    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "DAGSTER_HOME": str(self.home), "XTS_DUCKDB": self.db, "XTS_SYNC_WORKERS": "1",
                "PYTHONPATH": str(REPO), "XTS_LOG_LEVEL": "WARNING", **extra}

    def start(self, **extra: str) -> subprocess.Popen:
        log = open(self.root / f"sync-{len(self.runs)}.log", "w")  # noqa: SIM115 - closed with the process
        return subprocess.Popen([sys.executable, "-m", "xts_pipeline.cli", "sync", "--config", str(self.cfg),
                                 "--sandbox", str(self.state)], cwd=REPO, env=self.env(**extra), stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)

    def sync(self, timeout: float = 240, **extra: str) -> tuple[int, str]:
        """One `xts sync` to its end: (exit code, output)."""
        n = len(self.runs)
        p = self.start(**extra)
        rc = p.wait(timeout)
        self.runs.append(("sync", rc))
        return rc, (self.root / f"sync-{n}.log").read_text()

    def kill_when(self, pred: Callable[[], bool], what: str, timeout: float = 180, **extra: str) -> bool:
        """Start `xts sync`, SIGKILL its whole process group once `pred()` holds; whether the kill landed
        before the run ended by itself."""
        p = self.start(**extra)
        deadline = time.monotonic() + timeout
        hit = False
        while time.monotonic() < deadline and p.poll() is None:
            if pred():
                hit = True
                break
            time.sleep(0.05)
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
        p.wait(30)
        self.runs.append((f"killed {what}" if hit else f"ran out ({what})", None if hit else p.returncode))
        return hit

    def journal(self, state: str = "in_flight") -> int:
        with store.connect(self.db) as con:
            return con.execute("SELECT count(*) FROM write_journal WHERE state = ?", [state]).fetchone()[0]

    def converge(self, runs: int = 3) -> None:
        """Runs to completion until a cycle has nothing left to write (at most `runs`)."""
        for _ in range(runs):
            rc, out = self.sync()
            assert rc == 0, out
            with store.connect(self.db) as con:
                writes = con.execute("SELECT count(*) FROM plan WHERE pair_key = ? AND action <> 'skip'",
                                     [PAIR]).fetchone()[0]
            if writes == 0:
                return

    # --- the verdict, from Graph state ----------------------------------------------------------------
    def judge(self, departed: set[str] = frozenset()) -> dict[str, int]:
        """Every in-scope user linked once on the target with current attributes and its manager; every
        departed user deprovisioned; no duplicate. Returns counts for the report."""
        want = self.in_scope()
        tgt = self.target()
        live = [u for u in tgt if active(u) and u.get("creationType") == "Invitation"]
        why = f"(trial seed {self.seed_no}, runs {self.runs})"
        mails = Counter((u.get("mail") or "").lower() for u in live)
        assert not [m for m, n in mails.items() if n > 1], f"duplicate B2B users {why}"
        by_sid: dict[str, dict] = {}
        unlinked = [u["id"] for u in live if not ext(u, "xtsSourceObjectId")]
        assert not unlinked, f"{len(unlinked)} target users without link or provenance {why}"
        for u in live:
            sid = ext(u, "xtsSourceObjectId")
            assert sid not in by_sid, f"two target users linked to {sid} {why}"
            by_sid[sid] = u
            assert ext(u, "xtsSourceTenantId") and ext(u, "xtsSyncConfig") == PAIR, why
        assert set(by_sid) == set(want), (f"linked {len(by_sid)}, in scope {len(want)}; missing "
                                          f"{sorted(set(want) - set(by_sid))[:3]}, extra {sorted(set(by_sid) - set(want))[:3]} {why}")
        stale = [sid for sid, s in want.items() for k in ("displayName", "jobTitle", "department")
                 if s.get(k) and by_sid[sid].get(k) != s.get(k)]
        assert not stale, f"{len(stale)} stale attributes, e.g. {stale[:3]} {why}"
        managers = {sid: s.get("_managerId") for sid, s in want.items() if s.get("_managerId") in want}
        wrong = [sid for sid, m in managers.items() if by_sid[sid].get("_managerId") != by_sid[m]["id"]]
        assert not wrong, f"{len(wrong)} of {len(managers)} managers not set {why}"
        gone_ids = {u["id"] for u in tgt if not active(u)}
        for sid in departed:
            holders = [u for u in tgt if u.get("mail") and ext(u, "xtsSourceObjectId") in (sid, None)
                       and u["mail"].lower() == (self.source_user(sid).get("mail") or "").lower()]
            assert holders and all(u["id"] in gone_ids or not u.get("accountEnabled", True) for u in holders), \
                f"departed user {sid} still has access {why}"
        return {"linked": len(by_sid), "managers": len(managers), "departed": len(departed)}

    def source_user(self, sid: str) -> dict:
        return next(u for u in self.source() if u["id"] == sid)

    def log_rows(self, where: str, params: list | None = None) -> list[tuple]:
        with store.connect(self.db) as con:
            return con.execute(f"SELECT operation, status, source_object_id, reason FROM provisioning_log "  # noqa: S608
                               f"WHERE {where}", params or []).fetchall()
