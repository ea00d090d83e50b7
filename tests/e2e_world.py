"""A small two-tenant world for end-to-end tests: a real sandbox subprocess over HTTPS, a topology file,
the pipeline's definitions, and a temporary Dagster instance. Shared by the e2e and crash-safety tests."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from assets.definitions import build_definitions
from assets.sync import APPLIED, DESIRED, GUARDED, PLAN, RAW, SNAPSHOT, STAGED
from xts_pipeline import store
from xts_pipeline.sandbox.process import SandboxProcess

SRC, DST = "src", "dst"
PAIR = f"{SRC}__{DST}"

# The tenants and the pair, shared with the guardrails e2e test (which adds its own inbound policy).
def tenant_yaml(name: str, n: int) -> str:
    """One sandbox tenant of the e2e topologies: ids numbered `n`, its secret in XTS_SECRET_<NAME>."""
    return (f"  {name}:\n    tenant_id: 00000000-0000-0000-000{n}-000000000001\n"
            f"    domain: {name}.onmicrosoft.com\n    client_id: 00000000-0000-0000-000{n}-000000000002\n"
            f"    app_object_id: 00000000-0000-0000-000{n}-000000000003\n"
            f"    credential: {{env: XTS_SECRET_{name.upper()}}}\n")


SRC_PAIR = """\
  - pair: {source: src, target: dst}
    scope:
      all_members: true
      filters:
        - clauses:
            - {attribute: department, operator: NOT EQUALS, value: Legal}
"""
TENANTS_AND_PAIR = "tenants:\n" + tenant_yaml("src", 1) + tenant_yaml("dst", 2) + "topology:\n" + SRC_PAIR
TOPOLOGY = TENANTS_AND_PAIR + """\
inbound_policies:
  dst:
    allowed_sources: [src]
    volume: {max_creates_pct_of_target: null}
    # the seed reuses names across tenants; guardrails have their own tests
    impersonation: {include_role_assignable_group_members: false, include_directory_role_holders: false}
    privilege: {treat_role_assignable_as_privileged: false}
"""


def seed(state: Path, tenant: str, users: int, seed_no: int) -> None:
    subprocess.run([sys.executable, "-m", "xts_pipeline.cli", "sandbox", "seed", "--state", str(state),
                    "--tenant", tenant, "--users", str(users), "--seed", str(seed_no)], check=True,
                   capture_output=True)


@dataclass
class World:
    root: Path
    sandbox: SandboxProcess
    defs: dg.Definitions
    instance: dg.DagsterInstance
    db: str

    @property
    def tids(self) -> dict[str, str]:
        return {t["name"]: t["tenant_id"] for t in self.sandbox.info["tenants"]}

    def graph(self, tenant: str) -> Any:
        return self.defs.resources["graph"].client(tenant)

    def set_policy(self, allowed: bool) -> None:
        src = self.tids[SRC]
        self.sandbox.admin("PUT", f"/tenants/{DST}/partners/{src}", json={
            "tenantId": src, "identitySynchronization": {"tenantId": src, "userSyncInbound": {"isSyncAllowed": allowed}}})

    def materialize(self, selection: list[dg.AssetKey], partition: str, **kw: Any) -> dg.ExecuteInProcessResult:
        return dg.materialize([*self.defs.assets, *self.defs.asset_checks], selection=selection,
                              partition_key=partition, resources=self.defs.resources, instance=self.instance,
                              raise_on_error=False, **kw)

    def cycle(self, dry_run: bool = False) -> dict[str, Any]:
        """Source, target and pair materializations; returns the results and the plan/log counts."""
        out: dict[str, Any] = {"source": self.materialize([RAW, STAGED], SRC),
                               "target": self.materialize([SNAPSHOT], DST)}
        assert out["source"].success and out["target"].success
        out["pair"] = self.materialize([DESIRED, PLAN, GUARDED] if dry_run else [DESIRED, PLAN, GUARDED, APPLIED], PAIR)
        with store.connect(self.db) as con:
            out["plan"] = dict(con.execute("SELECT action, count(*) FROM plan WHERE pair_key = ? GROUP BY 1",
                                           [PAIR]).fetchall())
            out["log"] = dict(con.execute(
                "SELECT operation || '/' || status, count(*) FROM provisioning_log WHERE cycle_id = "
                "(SELECT cycle_id FROM plan_meta WHERE pair_key = ?) GROUP BY 1", [PAIR]).fetchall())
        return out

    def target_users(self) -> list[dict]:
        return self.sandbox.admin("GET", f"/tenants/{DST}/users?include_deleted=true")["value"]

    def source_users(self) -> list[dict]:
        return self.sandbox.admin("GET", f"/tenants/{SRC}/users")["value"]


def make_world(root: Path, src_users: int = 30, dst_users: int = 8) -> World:
    state = root / "sandbox"
    seed(state, SRC, src_users, 0)
    seed(state, DST, dst_users, 1)
    sb = SandboxProcess(state, seed=None).start()
    cfg = root / "topology.yaml"
    cfg.write_text(textwrap.dedent(TOPOLOGY))
    db = str(root / "xts.duckdb")
    defs = build_definitions(cfg, str(state), db)
    os.environ.setdefault("DAGSTER_HOME", str(root))
    world = World(root, sb, defs, dg.DagsterInstance.ephemeral(), db)
    world.set_policy(True)
    return world
