"""Entra token endpoint and Graph token checks, driven by the real MSAL over TLS."""

from __future__ import annotations

import json
import os
import re
import stat

import msal
import pytest
import requests

from xts_pipeline.sandbox.process import SandboxError

SCOPE = ["https://graph.microsoft.com/.default"]


def msal_app(sandbox, tenant: dict, secret: str | None = None, client_id: str | None = None,
             authority: str | None = None):
    return msal.ConfidentialClientApplication(
        client_id or tenant["client_id"], client_credential=secret or tenant["client_secret"],
        authority=authority or tenant["authority"], instance_discovery=False, http_client=sandbox.session())


def test_msal_gets_a_token_and_graph_accepts_it(sandbox):
    t = sandbox.tenant("contoso")
    result = msal_app(sandbox, t).acquire_token_for_client(SCOPE)
    assert result["token_type"] == "Bearer" and result["expires_in"] > 300
    r = sandbox.session().get(sandbox.info["graph_url"] + "/users?$top=1",
                              headers={"Authorization": "Bearer " + result["access_token"]})
    assert r.status_code == 200 and len(r.json()["value"]) == 1
    assert r.headers["request-id"]


def test_token_claims_carry_tenant_app_roles_and_expiry(sandbox):
    import jwt

    t = sandbox.tenant("fabrikam")
    claims = jwt.decode(sandbox.token("fabrikam"), options={"verify_signature": False})
    assert claims["tid"] == t["tenant_id"] and claims["appid"] == t["client_id"]
    assert claims["aud"] == "https://graph.microsoft.com"
    assert set(t["permissions"]) <= set(claims["roles"]) and claims["exp"] > claims["iat"]


def test_authority_may_name_the_tenant_by_domain(sandbox):
    t = sandbox.tenant("northwind")
    authority = sandbox.info["base_url"] + "/" + t["domain"]
    assert "access_token" in msal_app(sandbox, t, authority=authority).acquire_token_for_client(SCOPE)


def test_openid_configuration_has_what_msal_needs(sandbox):
    t = sandbox.tenant("contoso")
    doc = sandbox.session().get(t["authority"] + "/v2.0/.well-known/openid-configuration").json()
    for key in ("token_endpoint", "authorization_endpoint", "issuer", "jwks_uri"):
        assert doc[key].startswith(sandbox.info["base_url"])
    keys = sandbox.session().get(doc["jwks_uri"]).json()["keys"]
    assert keys[0]["kty"] == "RSA"


def test_bad_secret_gets_invalid_client_with_aadsts7000215(sandbox):
    t = sandbox.tenant("contoso")
    result = msal_app(sandbox, t, secret="not-the-secret").acquire_token_for_client(SCOPE)
    assert result["error"] == "invalid_client"
    assert 7000215 in result["error_codes"] and result["error_description"].startswith("AADSTS7000215")
    assert "not-the-secret" not in result["error_description"]


def test_non_ascii_secret_is_a_clean_invalid_client_not_a_500(sandbox):
    t = sandbox.tenant("contoso")
    result = msal_app(sandbox, t, secret="sécret-ü").acquire_token_for_client(SCOPE)
    assert result["error"] == "invalid_client" and 7000215 in result["error_codes"]


def test_unknown_app_gets_aadsts700016(sandbox):
    t = sandbox.tenant("contoso")
    result = msal_app(sandbox, t, client_id="11111111-2222-3333-4444-555555555555").acquire_token_for_client(SCOPE)
    assert result["error"] in ("invalid_client", "unauthorized_client")
    assert 700016 in result["error_codes"]


def test_wrong_scope_is_refused(sandbox):
    t = sandbox.tenant("contoso")
    r = sandbox.session().post(t["authority"] + "/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": t["client_id"], "client_secret": t["client_secret"],
        "scope": "User.Read"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer not.a.jwt", "Basic abc"])
def test_missing_or_garbage_tokens_get_401(sandbox, header):
    headers = {} if header is None else {"Authorization": header}
    r = sandbox.session().get(sandbox.info["graph_url"] + "/users", headers=headers)
    assert r.status_code == 401
    err = r.json()["error"]
    assert err["code"] == "InvalidAuthenticationToken"
    assert set(err["innerError"]) == {"date", "request-id", "client-request-id"}
    assert r.headers["request-id"] == err["innerError"]["request-id"]


def test_token_from_another_sandbox_is_foreign(sandbox, make_sandbox):
    other = make_sandbox(seed="demo")
    foreign = other.token("contoso")  # same tenant ids (deterministic seed), different signing key
    r = sandbox.session().get(sandbox.info["graph_url"] + "/users", headers={"Authorization": f"Bearer {foreign}"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_token_expires_on_the_sandbox_clock(make_sandbox):
    sb = make_sandbox(seed="demo")
    token = sb.token("northwind")
    url = sb.info["graph_url"] + "/users?$top=1"
    assert sb.session().get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    sb.admin("POST", "clock/advance", json={"seconds": 3600})
    r = sb.session().get(url, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and "expired" in r.json()["error"]["message"]


def test_missing_permission_gets_403_and_regrant_restores(make_sandbox, graph):
    sb = make_sandbox(seed="demo")
    g = graph(sb, "fabrikam")
    assert g.get("/users?$top=1").status_code == 200
    sb.admin("PUT", "tenants/fabrikam/permissions", json={"permissions": ["GroupMember.Read.All"]})
    r = g.get("/users?$top=1")
    assert r.status_code == 403 and r.json()["error"]["code"] == "Authorization_RequestDenied"
    assert "User.Read.All" in r.json()["error"]["message"]
    assert g.get("/groups?$top=1").status_code == 200
    # Read-only app: reads work, writes are refused (ReadWrite implies Read, not the other way round).
    sb.admin("PUT", "tenants/fabrikam/permissions", json={"permissions": ["User.Read.All"]})
    g2 = graph(sb, "fabrikam")
    uid = g2.get("/users?$top=1").json()["value"][0]["id"]
    assert g2.patch(f"/users/{uid}", json={"jobTitle": "x"}).status_code == 403
    assert g2.post("/invitations", json={"invitedUserEmailAddress": "a@b.example",
                                          "inviteRedirectUrl": "https://x"}).status_code == 403
    sb.admin("PUT", "tenants/fabrikam/permissions", json={"permissions": ["User.ReadWrite.All"]})
    g3 = graph(sb, "fabrikam")
    assert g3.get("/users?$top=1").status_code == 200
    assert g3.patch(f"/users/{uid}", json={"jobTitle": "x"}).status_code == 204


def test_requests_verifies_tls_against_the_sandbox_ca(sandbox):
    # Without the sandbox CA, certificate verification must fail: TLS is real.
    s = requests.Session()
    s.trust_env = False
    with pytest.raises(requests.exceptions.SSLError):
        s.get(sandbox.info["graph_url"] + "/users", timeout=10)


# ---- rotating or breaking an app's client secret (admin route) --------------------------------------------
def _token_status(sb, tenant: dict, secret: str) -> tuple[int, dict]:
    r = sb.session().post(f"{tenant['authority']}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": tenant["client_id"], "client_secret": secret,
        "scope": SCOPE[0]}, timeout=30)
    return r.status_code, r.json()


def test_rotated_secret_locks_out_the_old_one_and_is_persisted(make_sandbox, tmp_path):
    seed_file = tmp_path / "seed.yaml"
    seed_file.write_text("tenants:\n  - {name: alpha, users: 20}\n  - {name: beta, users: 10}\n")
    sb = make_sandbox(seed=str(seed_file), throttle="off")
    old = sb.tenant("alpha")
    beta_secret = sb.tenant("beta")["client_secret"]
    issued = sb.token("alpha")  # an access token from before the rotation

    got = sb.admin("PUT", f"tenants/{old['domain']}/secret", json={"rotate": True})
    new = got["client_secret"]
    assert got["tenant"] == "alpha" and new != old["client_secret"]
    assert re.fullmatch(r"[A-Za-z]{3}\dQ~[A-Za-z0-9_.~-]{34}", new)
    status, body = _token_status(sb, old, old["client_secret"])
    assert status == 401 and body["error"] == "invalid_client" and 7000215 in body["error_codes"]
    assert body["error_description"].startswith("AADSTS7000215")
    assert "access_token" in msal_app(sb, old, secret=new).acquire_token_for_client(SCOPE)
    # As in Entra, a token issued before the rotation stays valid until it expires.
    r = sb.session().get(sb.info["graph_url"] + "/users?$top=1", headers={"Authorization": f"Bearer {issued}"})
    assert r.status_code == 200
    # sandbox.json is rewritten, still private; the other tenant is untouched.
    on_disk = json.loads(sb.info_path.read_text())
    assert {t["name"]: t["client_secret"] for t in on_disk["tenants"]} == {"alpha": new, "beta": beta_secret}
    assert stat.S_IMODE(os.stat(sb.info_path).st_mode) == 0o600
    assert sb.refresh() == on_disk and sb.tenant("alpha")["client_secret"] == new

    # Breaking it on purpose: any given secret, e.g. what a test wants to see refused; survives a restart.
    sb.admin("PUT", "tenants/alpha/secret", json={"secret": "expired~secret.value_1"})
    sb.restart()
    alpha = sb.tenant("alpha")
    assert alpha["client_secret"] == "expired~secret.value_1"
    assert _token_status(sb, alpha, new)[0] == 401
    assert _token_status(sb, alpha, "expired~secret.value_1")[0] == 200
    assert _token_status(sb, sb.tenant("beta"), beta_secret)[0] == 200

    for bad in ({}, {"rotate": False}, {"rotate": True, "secret": "x"}, {"secret": ""}, {"secret": "has space"},
                {"secret": "caf\u00e9"}, {"secret": 42}, {"secret": "x" * 257}, {"other": 1}):
        with pytest.raises(SandboxError, match=r"400 .*rotate"):
            sb.admin("PUT", "tenants/alpha/secret", json=bad)
    with pytest.raises(SandboxError, match="404"):
        sb.admin("PUT", "tenants/nobody/secret", json={"rotate": True})
    assert sb.tenant("alpha")["client_secret"] == "expired~secret.value_1"
    assert _token_status(sb, alpha, "expired~secret.value_1")[0] == 200


def test_secret_route_needs_the_admin_key(sandbox):
    t = sandbox.tenant("contoso")
    r = sandbox.session().put(f"{sandbox.info['base_url']}/_sandbox/tenants/contoso/secret", json={"rotate": True},
                              headers={"X-Sandbox-Admin": "wrong"})
    assert r.status_code == 401
    assert _token_status(sandbox, t, t["client_secret"])[0] == 200
