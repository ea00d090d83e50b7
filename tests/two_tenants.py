"""A two-tenant topology (contoso -> fabrikam, secrets from env vars) shared by the definitions tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

TWO = """\
tenants:
  contoso:
    tenant_id: 00000000-0000-0000-0001-000000000001
    domain: contoso.onmicrosoft.com
    client_id: 00000000-0000-0000-0001-000000000002
    app_object_id: 00000000-0000-0000-0001-000000000003
    credential: {env: XTS_SECRET_CONTOSO}
  fabrikam:
    tenant_id: 00000000-0000-0000-0002-000000000001
    domain: fabrikam.onmicrosoft.com
    client_id: 00000000-0000-0000-0002-000000000002
    app_object_id: 00000000-0000-0000-0002-000000000003
    credential: {env: XTS_SECRET_FABRIKAM}
schedule: {interval_minutes: 40}
topology:
  - pair: {source: contoso, target: fabrikam}
    scope: {all_members: true}

"""
MERGER = """\
  tailspin:
    tenant_id: 00000000-0000-0000-0003-000000000001
    domain: tailspin.onmicrosoft.com
    client_id: 00000000-0000-0000-0003-000000000002
    credential: {env: XTS_SECRET_TAILSPIN}
"""


def write_topology(tmp_path: Path, text: str) -> Path:
    """`text` (dedented) as tmp_path/topology.yaml."""
    path = tmp_path / "topology.yaml"
    path.write_text(textwrap.dedent(text))
    return path
