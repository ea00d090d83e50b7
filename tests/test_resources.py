"""The Graph resource: secrets by reference (file, sandbox.json), never in the environment; one client per tenant."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest
import yaml

from assets.resources import GraphResource, graph_resource
from xts_pipeline.config import default_config_path


def _topology(tmp_path: Path, sandbox, credential: dict) -> Path:
    t = sandbox.tenant("contoso")
    doc = {
        "tenants": {"contoso": {
            "tenant_id": t["tenant_id"], "domain": t["domain"], "client_id": t["client_id"],
            "app_object_id": t["app_object_id"], "authority": t["authority"],
            "graph_url": sandbox.info["graph_url"], "ca_file": sandbox.info["ca_file"], "credential": credential,
        }, "fabrikam": {
            "tenant_id": sandbox.tenant("fabrikam")["tenant_id"], "domain": "fabrikam.onmicrosoft.com",
            "client_id": sandbox.tenant("fabrikam")["client_id"], "credential": {"env": "XTS_TEST_UNUSED"},
            "app_object_id": sandbox.tenant("fabrikam")["app_object_id"],
        }},
        "topology": [{"pair": {"source": "contoso", "target": "fabrikam"}, "scope": {"all_members": True}}],
        "inbound_policies": {"fabrikam": {"allowed_sources": ["contoso"]}},
    }
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_a_secret_file_is_read_when_the_client_is_built_and_never_exported(tmp_path, sandbox):
    secret_file = tmp_path / "contoso.secret"
    secret_file.write_text(sandbox.tenant("contoso")["client_secret"] + "\n")
    before = dict(os.environ)
    graph = graph_resource(str(_topology(tmp_path, sandbox, {"file": str(secret_file)})), None)
    assert dict(os.environ) == before, "a file secret must not be copied into the environment"
    contoso = graph.tenants["contoso"]
    assert contoso.client_secret is None and contoso.client_secret_file == str(secret_file)
    page = next(iter(graph.client("contoso").iter_users(select=["id"], top=3)))
    assert len(page) == 3


def test_a_missing_secret_file_names_the_tenant_and_the_file(tmp_path, sandbox):
    missing = tmp_path / "nope.secret"
    graph = graph_resource(str(_topology(tmp_path, sandbox, {"file": str(missing)})), None)
    with pytest.raises(ValueError, match=r"tenant contoso: cannot read secret file .*nope\.secret"):
        graph.client("contoso")


def test_a_sandbox_secret_is_read_from_sandbox_json_and_never_exported(sandbox):
    """A rehearsal's resource names the sandbox, not a secret: building it (and the definitions) writes no
    environment variable, and the client reads the tenant's generated secret from sandbox.json."""
    before = dict(os.environ)
    graph = graph_resource(str(default_config_path()), str(sandbox.state_dir))
    assert dict(os.environ) == before, "the sandbox's secrets must not be exported"
    secrets = [t["client_secret"] for t in sandbox.info["tenants"]]
    assert not any(s in repr(graph) or s in str(graph) for s in secrets)
    assert all(t.sandbox == str(sandbox.state_dir) and t.client_secret is None for t in graph.tenants.values())
    page = next(iter(graph.client("contoso").iter_users(select=["id"], top=3)))
    assert len(page) == 3
    assert dict(os.environ) == before


def test_a_run_keeps_one_client_per_tenant_and_the_next_run_gets_a_new_one(sandbox):
    """Within a run the client (MSAL token cache, connection pool) is shared; a new run gets a new one, so a
    permission revoked between runs is seen at the next run's token."""
    seen: list[tuple[int, int]] = []

    @dg.asset
    def probe(graph: GraphResource) -> None:
        seen.append((id(graph.client("contoso")), id(graph.client("contoso"))))

    resources = {"graph": graph_resource(str(default_config_path()), str(sandbox.state_dir))}
    for _ in range(2):
        assert dg.materialize([probe], resources=resources).success
    assert all(a == b for a, b in seen)
    fresh = graph_resource(str(default_config_path()), str(sandbox.state_dir))
    assert fresh.client("contoso") is not fresh.client("fabrikam")


def test_an_unknown_tenant_is_named(sandbox):
    graph = graph_resource(str(default_config_path()), str(sandbox.state_dir))
    with pytest.raises(ValueError, match="tenant nowhere is not in the topology"):
        graph.client("nowhere")
