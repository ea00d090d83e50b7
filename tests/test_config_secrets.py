"""Credentials: resolved at runtime, errors name tenant and source, values never leak; sandbox overlay."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from xts_pipeline.config import ConfigError, Topology, apply_sandbox, default_config_path, load_config

TENANTS = ("contoso", "fabrikam", "northwind")


def sandbox_json(tmp_path: Path, names=TENANTS, secret_prefix: str = "sb-secret") -> Path:  # noqa: S107
    """A sandbox.json shaped as docs/DESIGN.md describes."""
    port = 48211
    tenants = []
    for i, name in enumerate(names, start=1):
        tid = f"aaaaaaaa-0000-4000-8000-00000000000{i}"
        tenants.append({
            "name": name, "tenant_id": tid, "domain": f"{name}.onmicrosoft.com",
            "authority": f"https://127.0.0.1:{port}/{tid}",
            "client_id": f"bbbbbbbb-0000-4000-8000-00000000000{i}",
            "client_secret": f"{secret_prefix}-{name}",
            "app_object_id": f"cccccccc-0000-4000-8000-00000000000{i}",
            "permissions": ["User.Read.All"], "user_count": 10,
        })
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    info = {"base_url": f"https://127.0.0.1:{port}", "graph_url": f"https://127.0.0.1:{port}/v1.0",
            "ca_file": str(tmp_path / "ca.pem"), "admin_key": "k", "tenants": tenants}
    path = tmp_path / "sandbox.json"
    path.write_text(json.dumps(info))
    return path


def one_tenant_config(tmp_path: Path, credential: dict) -> Topology:
    doc = {
        "tenants": {
            "contoso": {"tenant_id": "9c5d131d-b1c3-4fc4-9e3f-c6557947d551", "domain": "contoso.onmicrosoft.com",
                        "client_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6", "credential": credential},
        },
    }
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_config(path)


def test_env_credential_resolves_and_missing_env_names_tenant_and_var(tmp_path, monkeypatch) -> None:
    topo = one_tenant_config(tmp_path, {"env": "XTS_TEST_SECRET_CONTOSO"})
    tenant = topo.tenants["contoso"]
    monkeypatch.delenv("XTS_TEST_SECRET_CONTOSO", raising=False)
    with pytest.raises(ConfigError) as info:
        tenant.resolve_secret()
    msg = str(info.value)
    assert str(tmp_path / "t.yaml") in msg
    assert "tenants.contoso.credential.env: tenant 'contoso': environment variable XTS_TEST_SECRET_CONTOSO is not set" in msg
    assert "export XTS_TEST_SECRET_CONTOSO" in msg
    monkeypatch.setenv("XTS_TEST_SECRET_CONTOSO", "s3cr3t-value")
    secret = tenant.resolve_secret()
    assert isinstance(secret, SecretStr) and secret.get_secret_value() == "s3cr3t-value"
    assert "s3cr3t" not in repr(tenant) and "s3cr3t" not in str(secret)


def test_file_credential_relative_to_config(tmp_path) -> None:
    topo = one_tenant_config(tmp_path, {"file": "secrets/contoso.txt"})
    tenant = topo.tenants["contoso"]
    assert tenant.credential.file == tmp_path / "secrets" / "contoso.txt"
    with pytest.raises(ConfigError, match=r"tenants.contoso.credential.file: tenant 'contoso': cannot read secret file .*contoso.txt"):
        tenant.resolve_secret()
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "contoso.txt").write_text("")
    with pytest.raises(ConfigError, match="is empty"):
        tenant.resolve_secret()
    (tmp_path / "secrets" / "contoso.txt").write_text("from-file\n")
    assert tenant.resolve_secret().get_secret_value() == "from-file"


def test_certificate_credential(tmp_path, monkeypatch) -> None:
    thumb = "AB" * 20
    topo = one_tenant_config(tmp_path, {"certificate": "app.pem", "thumbprint_env": "XTS_TEST_THUMB"})
    tenant = topo.tenants["contoso"]
    monkeypatch.setenv("XTS_TEST_THUMB", thumb)
    (tmp_path / "app.pem").write_text("pem")
    cert = tenant.resolve_certificate()
    assert cert is not None and cert.certificate_path == tmp_path / "app.pem" and cert.thumbprint == thumb
    with pytest.raises(ConfigError, match="resolve_certificate"):
        tenant.resolve_secret()


@pytest.mark.parametrize("credential, fragment", [
    ({}, "set exactly one of"),
    ({"env": "A", "file": "b"}, "found env, file"),
    ({"certificate": "a.pem"}, "needs exactly one of `thumbprint` or `thumbprint_env`"),
    ({"env": "A", "thumbprint": "AB" * 20}, "only go with `certificate:`"),
])
def test_credential_shape_errors(tmp_path, credential, fragment) -> None:
    with pytest.raises(ConfigError) as info:
        one_tenant_config(tmp_path, credential)
    assert "tenants.contoso.credential" in str(info.value) and fragment in str(info.value)


def test_default_authority_and_graph_url(tmp_path) -> None:
    tenant = one_tenant_config(tmp_path, {"env": "X"}).tenants["contoso"]
    assert tenant.authority == "https://login.microsoftonline.com/9c5d131d-b1c3-4fc4-9e3f-c6557947d551"
    assert tenant.graph_url == "https://graph.microsoft.com/v1.0"


def test_apply_sandbox_repoints_every_tenant(tmp_path) -> None:
    sb = sandbox_json(tmp_path)
    topo = load_config(default_config_path())
    pointed = apply_sandbox(topo, sb)
    for i, name in enumerate(TENANTS, start=1):
        t = pointed.tenants[name]
        assert t.tenant_id == f"aaaaaaaa-0000-4000-8000-00000000000{i}"
        assert t.authority == f"https://127.0.0.1:48211/{t.tenant_id}"
        assert t.graph_url == "https://127.0.0.1:48211/v1.0"
        assert t.app_object_id == f"cccccccc-0000-4000-8000-00000000000{i}"
        assert t.ca_file == tmp_path / "ca.pem"
        assert t.resolve_secret().get_secret_value() == f"sb-secret-{name}"
    # the original is untouched; pairs survive the overlay
    assert topo.tenants["contoso"].tenant_id == "00000000-0000-0000-0001-000000000001"
    assert [p.key for p in pointed.pairs()] == [p.key for p in topo.pairs()]
    # a state directory is accepted too
    assert apply_sandbox(topo, tmp_path).tenants["contoso"].tenant_id == pointed.tenants["contoso"].tenant_id


def test_apply_sandbox_connection(tmp_path) -> None:
    pointed = apply_sandbox(load_config(default_config_path()), sandbox_json(tmp_path))
    conn = pointed.tenants["fabrikam"].connection()
    assert conn.authority.startswith("https://127.0.0.1:48211/")
    assert conn.client_secret.get_secret_value() == "sb-secret-fabrikam"
    assert "sb-secret" not in repr(conn)


def test_apply_sandbox_missing_tenant_is_named(tmp_path) -> None:
    sb = sandbox_json(tmp_path, names=("contoso", "fabrikam"))
    with pytest.raises(ConfigError) as info:
        apply_sandbox(load_config(default_config_path()), sb)
    msg = str(info.value)
    assert "tenant 'northwind'" in msg and "contoso, fabrikam" in msg and "xts sandbox seed" in msg
    with pytest.raises(ConfigError, match="xts sandbox serve"):
        apply_sandbox(load_config(default_config_path()), tmp_path / "nowhere")


@settings(max_examples=30, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=12, max_size=40))
def test_sandbox_secret_never_in_repr_str_or_dumps(secret: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        sb = sandbox_json(Path(d), secret_prefix=secret)
        pointed = apply_sandbox(load_config(default_config_path()), sb)
    needle = f"{secret}-contoso"
    tenant = pointed.tenants["contoso"]
    assert tenant.resolve_secret().get_secret_value() == needle
    for text in (repr(pointed), str(pointed), pointed.model_dump_json(), repr(pointed.model_dump()),
                 repr(tenant), str(tenant), tenant.model_dump_json(), repr(tenant.credential),
                 repr(pointed.pairs())):
        assert needle not in text
