"""graph.errors and graph.connection: one-line actionable messages, no secrets, documented error shapes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xts_pipeline.graph import GraphClient, TenantConnection
from xts_pipeline.graph.errors import (
    AuthError,
    GraphError,
    PermissionError_,
    endpoint_of,
    parse_error_body,
    permission_hint,
)
from xts_pipeline.graph.http import make_session

SECRET = "s3cr3t~Value.WithDots_123"


def test_graph_error_body_shapes():
    # Graph's documented error resource, with innerError (and the innererror spelling some pages use)
    body = {"error": {"code": "Request_ResourceNotFound", "message": "Resource 'x' does not exist.",
                      "innerError": {"date": "2026-11-27T10:00:00", "request-id": "r", "client-request-id": "c"}}}
    assert parse_error_body(body) == ("Request_ResourceNotFound", "Resource 'x' does not exist.")
    body["error"]["innererror"] = body["error"].pop("innerError")
    assert parse_error_body(body)[0] == "Request_ResourceNotFound"
    # Entra's token endpoint error
    entra = {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace",
             "error_codes": [7000215]}
    assert parse_error_body(entra) == ("invalid_client", "AADSTS7000215: Invalid client secret provided.")
    assert parse_error_body(None) == (None, None) and parse_error_body("x") == (None, None)


@pytest.mark.parametrize(("method", "url", "perm"), [
    ("POST", "https://graph.microsoft.com/v1.0/invitations", "User.Invite.All"),
    ("GET", "https://graph.microsoft.com/v1.0/users?$select=id", "User.Read.All"),
    ("PATCH", "https://graph.microsoft.com/v1.0/users/1", "User.ReadWrite.All"),
    ("PUT", "/users/1/manager/$ref", "User.ReadWrite.All"),
    ("POST", "/directory/deletedItems/1/restore", "User.ReadWrite.All"),
    ("GET", "/directory/deletedItems/microsoft.graph.user", "User.Read.All"),
    ("GET", "/users/1/manager", "User.Read.All"),
    ("GET", "/directoryRoles/1/members", "RoleManagement.Read.Directory"),
    ("GET", "/groups/1/members", "GroupMember.Read.All (or Group.Read.All)"),
    ("GET", "/policies/crossTenantAccessPolicy/partners/1/identitySynchronization", "Policy.Read.All"),
    ("POST", "/applications/1/extensionProperties", "Application.ReadWrite.OwnedBy (or Application.ReadWrite.All)"),
])
def test_permission_hints(method, url, perm):
    assert permission_hint(method, url) == perm


def test_messages_are_one_line_with_tenant_endpoint_and_fix():
    e = PermissionError_("contoso", "https://graph.microsoft.com/v1.0/users?$filter=mail eq 'a@b.c'",
                         "access denied (403)", code="Authorization_RequestDenied", graph_message="Insufficient",
                         method="GET")
    s = str(e)
    assert s.startswith("tenant 'contoso': GET https://graph.microsoft.com/v1.0/users: access denied")
    assert "a@b.c" not in s and "\n" not in s and "fix: grant" in s
    assert repr(e).startswith("PermissionError_(") and isinstance(e, GraphError)
    assert endpoint_of("https://h/v1.0/users/delta?$deltatoken=abc#x") == "https://h/v1.0/users/delta"


def conn(**over) -> TenantConnection:
    args = dict(name="fabrikam", tenant_id="11111111-1111-1111-1111-111111111111",
                client_id="22222222-2222-2222-2222-222222222222", client_secret=SECRET)
    args.update(over)
    return TenantConnection(**args)


def test_connection_defaults_are_microsofts_and_hide_the_secret():
    c = conn()
    assert c.authority == "https://login.microsoftonline.com/11111111-1111-1111-1111-111111111111"
    assert c.graph_url == "https://graph.microsoft.com/v1.0" and c.is_microsoft_authority
    assert c.graph_scope == "https://graph.microsoft.com/.default"
    local = conn(authority="https://127.0.0.1:8443/t", graph_url="https://127.0.0.1:8443/v1.0/")
    assert not local.is_microsoft_authority and local.graph_url == "https://127.0.0.1:8443/v1.0"
    assert local.graph_scope == "https://graph.microsoft.com/.default"
    client = GraphClient(c)
    for text in (repr(c), str(c), repr(client), repr(client.tokens), repr(c.client_secret)):
        assert SECRET not in text
    client.close()


@pytest.mark.parametrize("bad", [dict(graph_url="http://graph.microsoft.com/v1.0"),
                                 dict(authority="login.microsoftonline.com/x"),
                                 dict(client_secret=None)])
def test_connection_refuses_unsafe_or_incomplete_config(bad):
    with pytest.raises(ValueError, match="tenant 'fabrikam'"):
        conn(**bad)


def test_session_never_trusts_env_and_always_verifies(tmp_path, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "evil.pem"))
    s = make_session()
    assert s.trust_env is False and s.verify.endswith("cacert.pem")
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    assert make_session(ca).verify == str(ca)
    with pytest.raises(FileNotFoundError, match="ca_file"):
        make_session(tmp_path / "missing.pem")


@given(st.text(max_size=40).map(lambda s: f"Zq9~{s}~9qZ"))
def test_secret_never_in_auth_error_or_repr(secret):
    c = conn(client_secret=secret)
    e = AuthError(c.name, f"{c.authority}/oauth2/v2.0/token", "the token endpoint refused the app",
                  code="invalid_client", graph_message="AADSTS7000215: Invalid client secret provided.")
    assert secret not in repr(c) and secret not in str(e) and secret not in repr(e)
