"""Hostile-source attacks, one test per class of issue 9, against the sandbox, judged from the target's Graph
state; each paired with a legitimate control that must still sync.

One world: two sources (src: 40 users, src2: 15 users) into one small target (dst: 8 users) with the
library's default inbound policy, except a CEO name, the sources allowed, two exemptions and a lower
window floor (60 creates per 24 h) so the time-and-pairs caps bite with few users. Tests run in order,
like successive cycles.
"""

from __future__ import annotations

import argparse
import os
import textwrap
from typing import Any

import dagster as dg
import pytest

from assets.definitions import build_definitions
from assets.sync import APPLIED, DESIRED, GUARDED, PLAN, RAW, SNAPSHOT, STAGED
from tests.e2e_world import SRC_PAIR, seed, tenant_yaml
from xts_pipeline import store
from xts_pipeline.guardrails.cli import approve_command
from xts_pipeline.sandbox.process import SandboxProcess

pytestmark = pytest.mark.slow

SRC, SRC2, DST = "src", "src2", "dst"
PAIRS = {SRC: f"{SRC}__{DST}", SRC2: f"{SRC2}__{DST}"}
CEO = "Megan Bowen"
WINDOW_FLOOR = 60

TENANTS = ("tenants:\n" + tenant_yaml("src", 1) + tenant_yaml("src2", 3) + tenant_yaml("dst", 2)
           + "topology:\n" + SRC_PAIR + """\
  - pair: {source: src2, target: dst}
    scope: {all_members: true}
storage: {duckdb_path: xts.duckdb}
""")
POLICY = """\
inbound_policies:
  dst:
    allowed_sources: [src, src2]
    volume: {{window_floor: {floor}}}
    impersonation:
      protected: [{{value: "{ceo}", label: CEO}}]
      exempt:
        - {{source: src, object_id: "{exempt_here}"}}
        - {{source: src2, object_id: "{exempt_elsewhere}"}}
"""


class Attacked:
    def __init__(self, root, sandbox, cfg, db):
        self.root, self.sandbox, self.cfg, self.db = root, sandbox, cfg, db
        self.defs: dg.Definitions | None = None
        self.instance = dg.DagsterInstance.ephemeral()
        self.cast: dict[str, dict] = {}

    def users(self, tenant: str) -> list[dict]:
        return self.sandbox.admin("GET", f"/tenants/{tenant}/users")["value"]

    def patch(self, tenant: str, uid: str, body: dict) -> None:
        """The source's admin changes a user through Graph (the sandbox admin API for read-only properties)."""
        self.sandbox.admin("PATCH", f"/tenants/{tenant}/users/{uid}", json=body)

    def materialize(self, selection: list[dg.AssetKey], partition: str) -> dg.ExecuteInProcessResult:
        return dg.materialize([*self.defs.assets, *self.defs.asset_checks], selection=selection,
                              partition_key=partition, resources=self.defs.resources, instance=self.instance,
                              raise_on_error=False)

    def cycle(self, *sources: str) -> dict[str, dict[str, Any]]:
        """Read the sources and the target, then plan, check and apply each pair (one after another)."""
        out: dict[str, dict[str, Any]] = {}
        for s in sources:
            assert self.materialize([RAW, STAGED], s).success
        assert self.materialize([SNAPSHOT], DST).success
        for s in sources:
            res = self.materialize([DESIRED, PLAN, GUARDED, APPLIED], PAIRS[s])
            out[s] = {e.check_name.removeprefix("guardrail_"): e for e in res.get_asset_check_evaluations()}
            assert self.materialize([SNAPSHOT], DST).success  # the next pair sees what this one wrote
        return out

    def linked(self) -> dict[str, dict]:
        """source object id -> the target user carrying our link."""
        out = {}
        for u in self.users(DST):
            oid = next((v for k, v in u.items() if k.endswith("_xtsSourceObjectId")), None)
            if oid:
                out[oid] = u
        return out

    def reason(self, pair_key: str, sid: str) -> str:
        """The user's provisioning-log reasons of the pair's latest cycle (a held row first)."""
        with store.connect(self.db) as con:
            rows = con.execute(
                "SELECT reason FROM provisioning_log WHERE pair_key = ? AND source_object_id = ? AND cycle_id = "
                "(SELECT cycle_id FROM provisioning_log WHERE pair_key = ? AND source_object_id = ? "
                "ORDER BY logged_at DESC LIMIT 1) "
                "ORDER BY reason NOT LIKE 'held by%', logged_at", [pair_key, sid, pair_key, sid]).fetchall()
        return "; ".join(r[0] or "" for r in rows)


def _internal(u: dict) -> bool:
    return (u["userType"] == "Member" and u.get("creationType") != "Invitation" and u.get("accountEnabled")
            and u.get("mail") and u.get("department") not in ("Legal", "Treasury"))


@pytest.fixture(scope="module")
def w(tmp_path_factory) -> Attacked:
    root = tmp_path_factory.mktemp("guardrails-attacks")
    state = root / "sandbox"
    seed(state, SRC, 40, 0)
    seed(state, SRC2, 15, 2)
    seed(state, DST, 8, 1)
    sb = SandboxProcess(state, seed=None, throttle="off").start()
    world = Attacked(root, sb, root / "topology.yaml", str(root / "xts.duckdb"))
    tids = {t["name"]: t["tenant_id"] for t in sb.info["tenants"]}
    for s in (SRC, SRC2):
        sb.admin("PUT", f"/tenants/{DST}/partners/{tids[s]}", json={
            "tenantId": tids[s], "identitySynchronization": {"tenantId": tids[s],
                                                             "userSyncInbound": {"isSyncAllowed": True}}})
    ceo = next(u for u in world.users(DST) if u.get("jobTitle") == "Chief Executive Officer")
    world.patch(DST, ceo["id"], {"displayName": CEO})
    pool = [u for u in world.users(SRC) if _internal(u)]
    names = ["title", "smallcaps", "filler", "bidi", "exempt_elsewhere", "near", "exempt_here", "long_city",
             "escape", "dis_priv", "dis_innocent", "reenable", "plain"]
    world.cast = dict(zip(names, pool, strict=False))
    looks = {"title": "Bowen, Megan (CEO)", "smallcaps": "\u1d0d\u1d07\u0262\u1d00\u0274 \u0299\u1d0f\u1d21\u1d07\u0274",
             "filler": "Megan\u3164Bowen", "bidi": "Megan \u202enewoB", "exempt_elsewhere": CEO, "near": "Megan Brown",
             "exempt_here": CEO}
    for k, name in looks.items():
        world.patch(SRC, world.cast[k]["id"], {"displayName": name})
    world.patch(SRC, world.cast["long_city"]["id"], {"city": "Springfield " * 30})
    # staging validates jobTitle and eight others; streetAddress reaches the plan unvalidated until now
    world.patch(SRC, world.cast["escape"]["id"], {"streetAddress": "1 Main St\x1b[2J\x1b[31m"})
    world.cfg.write_text(textwrap.dedent(TENANTS) + POLICY.format(
        floor=WINDOW_FLOOR, ceo=CEO, exempt_here=world.cast["exempt_here"]["id"],
        exempt_elsewhere=world.cast["exempt_elsewhere"]["id"]))
    world.defs = build_definitions(world.cfg, str(state), world.db)
    os.environ.setdefault("DAGSTER_HOME", str(root))
    yield world
    sb.stop()


def test_lookalikes_by_words_ignorables_small_capitals_and_bidi_are_held_near_namesake_syncs(w):
    """Class 2 (look-alikes) and class 3 (exemptions): held users are absent from the target."""
    checks = w.cycle(SRC, SRC2)
    linked = w.linked()
    for k in ("title", "smallcaps", "filler", "bidi", "exempt_elsewhere"):
        assert w.cast[k]["id"] not in linked, k
        assert w.reason(PAIRS[SRC], w.cast[k]["id"]).startswith("held by impersonation"), k
    assert "U+202E RIGHT-TO-LEFT OVERRIDE" in w.reason(PAIRS[SRC], w.cast["bidi"]["id"])
    # Controls: a near-namesake (one real letter different) and the exempted same person sync.
    assert linked[w.cast["near"]["id"]]["displayName"] == "Megan Brown"
    assert linked[w.cast["exempt_here"]["id"]]["displayName"] == CEO
    imp = checks[SRC]["impersonation"]
    assert not imp.passed and imp.severity == dg.AssetCheckSeverity.WARN
    assert w.cast["plain"]["id"] in linked  # the rest of the pair applied


def test_invalid_values_are_held_and_never_reach_graph(w):
    """Class 6: a 360-character city and an escape sequence in streetAddress are held with the rule named."""
    linked = w.linked()
    for k, attr in (("long_city", "city"), ("escape", "streetAddress")):
        assert w.cast[k]["id"] not in linked
        why = w.reason(PAIRS[SRC], w.cast[k]["id"])
        assert why.startswith("held by attribute_validity") and attr in why, why
    assert "more than Graph's maximum length of 128" in w.reason(PAIRS[SRC], w.cast["long_city"]["id"])
    assert "U+001B" in w.reason(PAIRS[SRC], w.cast["escape"]["id"])
    assert not [u for u in w.users(DST) if len(u.get("city") or "") > 128 or "\x1b" in (u.get("streetAddress") or "")]


def test_disable_carrying_a_privileged_department_never_writes_it(w):
    """Class 1: a disable that also sets department=Treasury (privileged group's rule) is judged by all it writes."""
    linked = w.linked()
    for k in ("dis_priv", "dis_innocent", "reenable"):
        assert w.cast[k]["id"] in linked, k
    w.patch(SRC, w.cast["dis_priv"]["id"], {"accountEnabled": False, "department": "Treasury"})
    w.patch(SRC, w.cast["dis_innocent"]["id"], {"accountEnabled": False, "jobTitle": "On Leave"})
    w.patch(SRC, w.cast["reenable"]["id"], {"accountEnabled": False})
    w.cycle(SRC)
    linked = w.linked()
    assert linked[w.cast["dis_priv"]["id"]].get("department") != "Treasury"
    assert "held by privilege" in w.reason(PAIRS[SRC], w.cast["dis_priv"]["id"])
    # Control: an ordinary disable with an innocent change goes through, change included.
    innocent = linked[w.cast["dis_innocent"]["id"]]
    assert innocent["accountEnabled"] is False and innocent.get("jobTitle") == "On Leave"
    assert linked[w.cast["reenable"]["id"]]["accountEnabled"] is False


def test_re_enable_rechecks_the_whole_record(w):
    """Class 1/7: a re-enable writes only accountEnabled, but the record it revives satisfies a privileged rule."""
    target = w.linked()[w.cast["reenable"]["id"]]
    w.patch(DST, target["id"], {"department": "Treasury"})  # left over while disabled
    w.patch(SRC, w.cast["reenable"]["id"], {"accountEnabled": True, "department": "Treasury"})
    w.patch(SRC, w.cast["dis_innocent"]["id"], {"accountEnabled": True})
    w.cycle(SRC)
    linked = w.linked()
    assert linked[w.cast["reenable"]["id"]]["accountEnabled"] is False
    assert "held by privilege" in w.reason(PAIRS[SRC], w.cast["reenable"]["id"])
    assert linked[w.cast["dis_innocent"]["id"]]["accountEnabled"] is True  # innocent re-enable syncs


def test_converted_b2b_member_is_never_synced_onward(w):
    """Class 5: a member converted to B2B (externalUserState set, creationType null, userType Member)."""
    legal = [u for u in w.users(SRC) if u["userType"] == "Member" and u.get("department") == "Legal"
             and u.get("mail") and u.get("accountEnabled") and u.get("creationType") != "Invitation"]
    converted, control = legal[0], legal[1]
    w.patch(SRC, converted["id"], {"department": "Sales", "externalUserState": "Accepted"})
    w.patch(SRC, control["id"], {"department": "Sales"})
    w.cycle(SRC)
    linked = w.linked()
    assert converted["id"] not in linked
    assert control["id"] in linked


def _new_users(w: Attacked, tenant: str, n: int, tag: str) -> list[str]:
    domain = f"{tenant}.onmicrosoft.com"
    out = []
    for i in range(n):
        u = w.defs.resources["graph"].client(tenant).request("POST", "users", json_body={
            "accountEnabled": True, "displayName": f"Flood {tag} {i:02d}", "mailNickname": f"flood{tag}{i:02d}",
            "userPrincipalName": f"flood{tag}{i:02d}@{domain}", "mail": f"flood{tag}{i:02d}@{domain}",
            "department": "Sales",
            "passwordProfile": {"password": "x-Not-Used-1!", "forceChangePasswordNextSignIn": True}})
        out.append(u["id"])
    return out


def test_flood_paced_and_split_across_sources_is_stopped_then_approved_once(w, capsys, monkeypatch):
    """Class 4: creates from both sources over the rolling window meet the per-target cap; one approval admits
    the deliberate load (the control)."""
    with store.connect(w.db) as con:
        logged = con.execute("SELECT count(*) FROM provisioning_log WHERE target_tenant = ? AND status = 'Success' "
                             "AND operation = 'create'", [DST]).fetchone()[0]
    room = WINDOW_FLOOR - logged
    assert room > 4
    first = _new_users(w, SRC, room - 2, "a")  # fits: under the per-cycle cap and the window
    second = _new_users(w, SRC2, 8, "b")  # each under the per-cycle cap; together over the window
    checks = w.cycle(SRC, SRC2)
    linked = w.linked()
    assert set(first) <= set(linked)
    assert not set(second) & set(linked)
    vol = checks[SRC2]["volume"]
    assert not vol.passed and vol.severity == dg.AssetCheckSeverity.ERROR
    text = vol.description
    assert f"window_floor={WINDOW_FLOOR}" in text and "last 24 h" in text and "from every source" in text
    assert "this plan 8" in text
    fp = vol.metadata["plan_fingerprint"].value
    # complete and paste-safe
    assert f"xts approve --config {w.cfg.resolve()} --pair '{SRC2}->{DST}' --plan {fp}" in text
    assert text.count("xts approve") == 1, text  # said once
    monkeypatch.setenv("XTS_APPROVER", "ciso")
    args = argparse.Namespace(config=str(w.cfg), pair=f"{SRC2}->{DST}", plan=fp, reason="merger load, CHG-9")
    assert approve_command(args) == 0
    capsys.readouterr()
    checks = w.cycle(SRC2)
    assert checks[SRC2]["volume"].passed
    assert set(second) <= set(w.linked())
