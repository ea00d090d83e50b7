"""State survives stop/start and a crash (SIGKILL); `xts sandbox seed`; loopback-only serving."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

from xts_pipeline.sandbox.process import SandboxProcess


def test_state_survives_restart_and_kill(make_sandbox, graph):
    sb = make_sandbox(seed="demo")
    g = graph(sb, "fabrikam")
    t = sb.tenant("fabrikam")
    before = sb.info
    nick = "s" + uuid.uuid4().hex[:8]
    made = g.post("/users", json={"accountEnabled": True, "displayName": nick, "mailNickname": nick,
                                  "userPrincipalName": f"{nick}@fabrikam.onmicrosoft.com",
                                  "passwordProfile": {"password": "x"}}).json()
    victim = sb.admin("GET", "tenants/fabrikam/users")["value"][3]["id"]
    assert g.delete(f"/users/{victim}").status_code == 204
    assert g.post(f"/applications/{t['app_object_id']}/extensionProperties",
                  json={"name": "keep", "targetObjects": ["User"]}).status_code == 201
    sb.admin("PUT", "tenants/fabrikam/invitations", json={"allowed": False})
    delta_link = g.get("/users/delta?$deltatoken=latest").json()["@odata.deltaLink"]
    port = sb.port

    sb.restart()
    assert sb.port == port  # the same port when it is free
    assert sb.info["admin_key"] == before["admin_key"]
    assert sb.info["tenants"] == before["tenants"]  # one user created, one deleted
    g = graph(sb, "fabrikam")
    assert g.get(f"/users/{made['id']}").status_code == 200
    assert victim in {d["id"] for d in g.all_pages("/directory/deletedItems/microsoft.graph.user")}
    assert sb.admin("GET", "state")["tenants"]["fabrikam"]["allow_invitations"] is False
    # delta state survives: the old deltaLink still works and sees later changes only
    assert g.patch(f"/users/{made['id']}", json={"jobTitle": "after restart"}).status_code == 204
    r = g.get(delta_link)
    assert r.status_code == 200 and [u["id"] for u in r.json()["value"]] == [made["id"]]

    sb.kill()  # a crash: no graceful shutdown
    sb.start()
    g = graph(sb, "fabrikam")
    assert g.get(f"/users/{made['id']}?$select=jobTitle").json()["jobTitle"] == "after restart"
    ext = f"extension_{t['client_id'].replace('-', '')}_keep"
    assert g.patch(f"/users/{made['id']}", json={ext: "v"}).status_code == 204


def test_seed_command_adds_a_tenant_that_serve_then_serves(tmp_path, graph):
    state = tmp_path / "st"
    out = subprocess.run([sys.executable, "-m", "xts_pipeline.cli", "sandbox", "seed", "--state", str(state),
                          "--tenant", "woodgrove", "--users", "120", "--seed", "3"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    again = subprocess.run([sys.executable, "-m", "xts_pipeline.cli", "sandbox", "seed", "--state", str(state),
                            "--tenant", "woodgrove", "--users", "5"], capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "woodgrove" in again.stderr
    with SandboxProcess(state, seed=None) as sb:
        info = json.loads((state / "sandbox.json").read_text())
        assert [t["name"] for t in info["tenants"]] == ["woodgrove"]
        assert info["tenants"][0]["user_count"] == 120
        assert len(graph(sb, "woodgrove").all_pages("/users?$top=999&$select=id")) == 120
    assert not (state / "sandbox.json").exists()  # removed on a clean shutdown


def test_serve_refuses_non_loopback_hosts(tmp_path):
    out = subprocess.run([sys.executable, "-m", "xts_pipeline.cli", "sandbox", "serve", "--state", str(tmp_path),
                          "--host", "0.0.0.0"], capture_output=True, text=True, timeout=60)  # noqa: S104
    assert out.returncode == 2 and "loopback" in out.stderr


def test_sandbox_json_is_private_and_complete(sandbox):
    info = json.loads(sandbox.info_path.read_text())
    for private in ("sandbox.json", "sandbox.out", "sandbox.sqlite3", "server-key.pem", "signing-key.pem"):
        assert (sandbox.state_dir / private).stat().st_mode & 0o077 == 0, private
    assert info["graph_url"] == info["base_url"] + "/v1.0" and info["base_url"].startswith("https://127.0.0.1:")
    assert len(info["tenants"]) >= 3
    for t in info["tenants"]:
        assert {"name", "tenant_id", "domain", "authority", "client_id", "client_secret", "app_object_id",
                "permissions", "user_count"} <= set(t)
        assert t["authority"] == f"{info['base_url']}/{t['tenant_id']}"


def test_seeding_a_running_sandbox_serves_the_new_tenant(make_sandbox, graph):
    sb = make_sandbox(seed="demo")
    out = subprocess.run([sys.executable, "-m", "xts_pipeline.cli", "sandbox", "seed", "--state",
                          str(sb.state_dir), "--tenant", "tailspin", "--users", "60", "--seed", "5"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    info = json.loads(sb.info_path.read_text())
    assert "tailspin" in [t["name"] for t in info["tenants"]]  # the seed command refreshed sandbox.json
    # a token request for the new tenant (by domain) makes the running server load it from the store
    r = sb.session().post(f"{sb.info['base_url']}/tailspin.onmicrosoft.com/oauth2/v2.0/token",
                          data={"grant_type": "client_credentials", "client_id": "x", "client_secret": "y",
                                "scope": "https://graph.microsoft.com/.default"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_client"  # known tenant now, wrong app
    sb.refresh()
    assert sb.tenant("tailspin")["user_count"] == 60
    assert len(graph(sb, "tailspin").all_pages("/users?$top=999&$select=id")) == 60


def test_serve_stdout_names_the_file_and_masks_every_secret(sandbox):
    """stdout (terminals, CI logs) says where sandbox.json is and never carries a client secret or the
    admin key: those live in the 0600 file only."""
    info = json.loads(sandbox.info_path.read_text())
    out = (sandbox.state_dir / "sandbox.out").read_text()
    assert str(sandbox.info_path) in out and "0600" in out
    secrets = [info["admin_key"], *(t["client_secret"] for t in info["tenants"])]
    assert secrets and not any(s in out for s in secrets)
    assert all(t["client_id"] in out for t in info["tenants"])
