"""`xts sandbox seed` into a running sandbox: the merger rehearsal path from the README."""

from __future__ import annotations

import json
import subprocess
import sys


def _seed(state, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xts_pipeline.cli", "sandbox", "seed", "--state", str(state),
                           *extra], capture_output=True, text=True, timeout=120)


def test_seeding_a_running_sandbox_serves_the_tenant_and_sets_partner_policies(make_sandbox, graph):
    sb = make_sandbox(seed="demo", throttle="off")
    done = _seed(sb.state_dir, "--tenant", "tailspin", "--users", "40", "--partners", "contoso")
    assert done.returncode == 0, done.stderr
    assert "serves it now" in done.stdout and "sync allowed with contoso" in done.stdout
    info = json.loads((sb.state_dir / "sandbox.json").read_text())
    assert "tailspin" in {t["name"] for t in info["tenants"]}
    sb.refresh()
    tailspin, contoso = sb.tenant("tailspin"), sb.tenant("contoso")
    users = graph(sb, "tailspin").all_pages("/users?$select=id&$top=999")
    assert len(users) == 40
    for owner, partner in ((contoso, tailspin), (tailspin, contoso)):
        r = graph(sb, owner["name"]).get(
            f"/policies/crossTenantAccessPolicy/partners/{partner['tenant_id']}/identitySynchronization")
        assert r.status_code == 200 and r.json()["userSyncInbound"]["isSyncAllowed"] is True


def test_unknown_partner_is_one_line_naming_the_known_tenants(make_sandbox):
    sb = make_sandbox(seed="demo", throttle="off")
    done = _seed(sb.state_dir, "--tenant", "tailspin", "--users", "5", "--partners", "contosoo")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "contosoo" in done.stderr and "contoso, fabrikam, northwind" in done.stderr
