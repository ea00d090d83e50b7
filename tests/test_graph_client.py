"""GraphClient against the real sandbox over HTTPS: paging, filters, delta, extensions, errors, secrets."""

from __future__ import annotations

import logging
import types

import pytest

from tests.graph_helpers import connection, grant, raw_users
from xts_pipeline.graph import (
    AuthError,
    GraphClient,
    GraphError,
    PermissionError_,
    TlsError,
    UnreachableError,
)
from xts_pipeline.graph.odata import endswith, eq, startswith
from xts_pipeline.sandbox.process import SandboxProcess


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    with SandboxProcess(tmp_path_factory.mktemp("graph-client"), seed="demo") as sb:
        yield sb
        sb.session().close()  # workaround: an idle admin keep-alive makes the sandbox's SIGTERM wait 20 s


@pytest.fixture(scope="module")
def tenant(sandbox):
    return grant(sandbox, "northwind")


@pytest.fixture(scope="module")
def client(sandbox, tenant):
    with GraphClient(connection(sandbox.info, tenant)) as c:
        yield c


def test_iter_users_streams_pages_following_nextlink(client, sandbox, tenant):
    pages = client.iter_users(["id", "displayName", "mail"], top=37)
    assert isinstance(pages, types.GeneratorType)
    sizes, ids = [], set()
    for page in pages:
        sizes.append(len(page))
        ids.update(u["id"] for u in page)
    assert max(sizes) <= 37 and len(sizes) > 2
    assert ids == {u["id"] for u in raw_users(sandbox, tenant["name"])}


def test_quotes_and_injection_never_change_the_filter(client, sandbox, tenant):
    victim = raw_users(sandbox, tenant["name"])[3]
    sandbox.admin("PATCH", f"/_sandbox/tenants/{tenant['name']}/users/{victim['id']}",
                  json={"displayName": "Renée O'Neil ' or 1 eq 1"})
    found = client.find_users(eq("displayName", "Renée O'Neil ' or 1 eq 1"), ["id", "displayName"])
    assert [u["id"] for u in found] == [victim["id"]]
    assert client.find_users(eq("mail", "x' or 1 eq 1"), ["id"]) == []
    assert client.find_users(startswith("displayName", "Renée O'"), ["id"])[0]["id"] == victim["id"]


def test_advanced_query_sends_consistency_level(client, tenant):
    # endsWith is an advanced query: Graph wants ConsistencyLevel: eventual and $count=true.
    found = client.find_users(endswith("mail", "@" + tenant["domain"]), ["id", "mail"], limit=5000)
    assert found and all(u["mail"].endswith("@" + tenant["domain"]) for u in found)


def test_delta_round_then_changes_then_expired_token_resyncs(client, sandbox, tenant):
    first = client.delta_users(["id", "displayName", "department"])
    total = sum(len(p) for p in first)
    assert first.delta_link and not first.resynced and total == len(raw_users(sandbox, tenant["name"]))
    someone = raw_users(sandbox, tenant["name"])[5]
    sandbox.admin("PATCH", f"/_sandbox/tenants/{tenant['name']}/users/{someone['id']}",
                  json={"department": "Delta Test"})
    second = client.delta_users(["id", "displayName", "department"], delta_link=first.delta_link)
    changed = [u for page in second for u in page]
    assert [u["id"] for u in changed] == [someone["id"]] and changed[0]["department"] == "Delta Test"
    assert second.delta_link and second.delta_link != first.delta_link
    sandbox.admin("POST", "/_sandbox/clock/advance", json={"seconds": 8 * 86400})  # tokens last ~7 days
    third = client.delta_users(["id"], delta_link=second.delta_link)
    assert sum(len(p) for p in third) == total and third.resynced and third.delta_link
    assert "deltatoken" not in repr(third)


def test_groups_members_policy_and_extensions(client, sandbox, tenant):
    groups = [g for page in client.iter_groups(["id", "displayName"]) for g in page]
    assert groups
    members = [m for page in client.iter_group_members(groups[0]["id"]) for m in page]
    assert all("id" in m for m in members)
    other = next(t for t in sandbox.info["tenants"] if t["name"] != tenant["name"])
    policy = client.partner_sync_policy(other["tenant_id"])
    assert policy is not None and "userSyncInbound" in policy
    # The setting without the answer's @odata.context, which names the endpoint (a restarted sandbox's port):
    # the snapshot keeps the setting and the pair fingerprint hashes it.
    assert not [k for k in policy if k.startswith("@odata.")], policy
    assert client.partner_sync_policy("00000000-0000-0000-0000-000000000000") is None
    names = ["xtsSourceTenantId", "xtsSourceObjectId", "xtsSyncConfig"]
    ext = client.ensure_extensions(tenant["app_object_id"], names)
    prefix = "extension_" + tenant["client_id"].replace("-", "") + "_"
    assert ext == {n: prefix + n for n in names}
    assert client.ensure_extensions(tenant["app_object_id"], names) == ext  # idempotent


def test_errors_are_one_actionable_line_and_secrets_stay_hidden(sandbox, tenant, caplog):
    caplog.set_level(logging.DEBUG)
    info = sandbox.info
    secret = tenant["client_secret"]
    good = GraphClient(connection(info, tenant))
    token = good.tokens.token()
    list(good.iter_users(["id"], top=999))

    bad = GraphClient(connection(info, tenant, client_secret="wrong-" + secret[:4]))
    with pytest.raises(AuthError) as auth:
        list(bad.iter_users(["id"]))
    msg = str(auth.value)
    assert tenant["name"] in msg and "/token" in msg and "\n" not in msg and "fix:" in msg

    grant(sandbox, tenant["name"], ["User.Read.All"])
    try:
        denied = GraphClient(connection(info, tenant))
        with pytest.raises(PermissionError_) as perm:
            list(denied.iter_groups(["id"]))
        assert "Group" in str(perm.value) and tenant["name"] in str(perm.value) and "/groups" in str(perm.value)
    finally:
        grant(sandbox, tenant["name"])

    port_closed = "https://127.0.0.1:9"
    unreachable = GraphClient(connection(info, tenant, authority=f"{port_closed}/{tenant['tenant_id']}",
                                         graph_url=f"{port_closed}/v1.0"))
    with pytest.raises(UnreachableError) as down:
        unreachable.find_users(eq("mail", "a@b.c"))
    assert "127.0.0.1:9" in str(down.value) and tenant["name"] in str(down.value)

    untrusted = GraphClient(connection(info, tenant, ca_file=None))  # certifi's bundle: sandbox CA unknown
    with pytest.raises(TlsError) as tls:
        untrusted.find_users(eq("mail", "a@b.c"))
    assert tenant["name"] in str(tls.value) and "ca_file" in str(tls.value)

    everything = [repr(good), str(good), repr(good.conn), str(good.conn), repr(good.tokens), repr(bad.conn),
                  caplog.text]
    for exc in (auth.value, perm.value, down.value, tls.value):
        everything += [str(exc), repr(exc), repr(exc.__dict__)]
    blob = "\n".join(everything)
    for c in (good, bad, denied, unreachable, untrusted):
        c.close()
    assert secret not in blob
    assert token not in blob


def test_session_trusts_only_the_configured_ca(client, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/ca.pem")
    assert client.session.trust_env is False and client.session.verify == client.conn.ca_file
    assert client.find_users(eq("mail", "nobody@example.com")) == []
    with pytest.raises(GraphError, match="refusing to send the token"):
        list(client.iter_pages("https://evil.example/v1.0/users"))


def test_token_is_cached_then_refreshed_when_graph_says_expired(sandbox, tenant):
    """One MSAL app per tenant: many calls share a token; an expired one is replaced once, transparently."""
    with GraphClient(connection(sandbox.info, tenant)) as c:
        token_posts = []
        c.session.hooks["response"].append(
            lambda r, *a, **k: token_posts.append(r.status_code) if r.url.endswith("/oauth2/v2.0/token") else None)
        for _ in range(5):
            c.find_users(eq("mail", "nobody@example.com"))
        assert token_posts == [200]
        sandbox.admin("POST", "/_sandbox/clock/advance", json={"seconds": 2 * 3600})  # past the 3599 s lifetime
        assert c.find_users(eq("mail", "nobody@example.com")) == []
        assert token_posts == [200, 200]


def test_certificate_credential_is_built_from_a_pem(tmp_path, sandbox, tenant):
    """Certificate auth: thumbprint from the PEM; the sandbox has no certificate flow, so expect AuthError."""
    import trustme
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    from xts_pipeline.graph.auth import _certificate_credential

    cert = trustme.CA(key_type=trustme.KeyType.RSA).issue_cert("xts-app.example")
    pem = tmp_path / "app.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(pem))
    conn = connection(sandbox.info, tenant, client_secret=None, certificate_path=str(pem))
    cred = _certificate_credential(conn)
    loaded = x509.load_pem_x509_certificate(cert.cert_chain_pems[0].bytes())
    assert cred["thumbprint"] == loaded.fingerprint(hashes.SHA1()).hex()  # noqa: S303 - x5t is SHA-1 by spec
    with GraphClient(conn) as c, pytest.raises(AuthError) as err:
        c.find_users(eq("mail", "x@y.z"))
    assert "PRIVATE KEY" not in str(err.value) and tenant["name"] in str(err.value)
    ec = tmp_path / "ec.pem"
    trustme.CA(key_type=trustme.KeyType.ECDSA).issue_cert("x.example").private_key_and_cert_chain_pem.write_to_path(
        str(ec))
    with GraphClient(connection(sandbox.info, tenant, client_secret=None, certificate_path=str(ec))) as c, \
            pytest.raises(AuthError, match="RSA"):
        c.find_users(eq("mail", "x@y.z"))
    with pytest.raises(AuthError, match="cannot read certificate file"):
        _certificate_credential(connection(sandbox.info, tenant, certificate_path=str(tmp_path / "missing.pem")))


def test_reads_survive_429_5xx_and_resets(client, sandbox, tenant):
    """Paging under read faults returns exactly the same users as without faults."""
    expected = {u["id"] for u in raw_users(sandbox, tenant["name"])}
    sandbox.admin("PUT", "/_sandbox/faults", json={"spec": "kind=read,429=0.2,5xx=0.1,reset=0.05", "seed": 9})
    try:
        got = [u["id"] for page in client.iter_users(["id"], top=100) for u in page]
        with GraphClient(client.conn, max_throttle_retries=1, max_attempts=1) as impatient:
            sandbox.admin("PUT", "/_sandbox/faults", json={"spec": "kind=read,429=1.0", "seed": 9})
            with pytest.raises(GraphError) as err:
                impatient.find_users(eq("mail", "x@y.z"))
    finally:
        sandbox.admin("PUT", "/_sandbox/faults", json={"spec": "", "seed": 0})
    assert len(got) == len(expected) and set(got) == expected
    assert "429" in str(err.value) and tenant["name"] in str(err.value)
