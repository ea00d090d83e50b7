"""Graph resources built from a production-shaped topology (no sandbox overlay) reach the sandbox."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from assets.resources import graph_resources, resource_key


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
    resources = graph_resources(str(_topology(tmp_path, sandbox, {"file": str(secret_file)})), None)
    assert dict(os.environ) == before, "a file secret must not be copied into the environment"
    resource = resources[resource_key("contoso")]
    assert resource.client_secret is None and resource.client_secret_file == str(secret_file)
    page = next(iter(resource.client().iter_users(select=["id"], top=3)))
    assert len(page) == 3


def test_a_missing_secret_file_names_the_tenant_and_the_file(tmp_path, sandbox):
    missing = tmp_path / "nope.secret"
    resources = graph_resources(str(_topology(tmp_path, sandbox, {"file": str(missing)})), None)
    with pytest.raises(ValueError, match=r"tenant contoso: cannot read secret file .*nope\.secret"):
        resources[resource_key("contoso")].client()
