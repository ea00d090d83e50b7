"""Dagster resources: Graph access per tenant, the DuckDB staging file, and the topology.

Kept tiny: each resource only carries settings and builds the library object (GraphClient, a DuckDB
path, a Topology). Secrets arrive as the name of their environment variable, read when the Graph client is built,
so the UI and the event log only ever show the variable's name, and a missing one is named with its tenant.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field, PrivateAttr

from xts_pipeline import store


class GraphTenantResource(dg.ConfigurableResource):
    """Microsoft Graph for one tenant, through xts_pipeline.graph.GraphClient."""

    name: str
    tenant_id: str
    client_id: str
    authority: str | None = None
    graph_url: str = "https://graph.microsoft.com/v1.0"
    # The NAME of the variable holding the secret, read when the client is built: a missing variable is
    # then one clear error naming it and the tenant, not a Dagster config error before the run starts.
    client_secret_env: str | None = None
    # Or the secret itself (tests, helpers); kept out of reprs so a logged resource shows no secret.
    client_secret: str | None = Field(default=None, repr=False)
    # Or a file holding the secret, read only when the client is built (never exported to the environment).
    client_secret_file: str | None = None
    certificate_path: str | None = None
    certificate_thumbprint: str | None = None
    ca_file: str | None = None
    app_object_id: str | None = None

    _client: Any = PrivateAttr(default=None)

    def client(self) -> Any:
        """One GraphClient per resource instance (it keeps the MSAL token cache and connection pool)."""
        if self._client is None:
            from xts_pipeline.graph import GraphClient, TenantConnection

            secret = self.client_secret
            if isinstance(secret, dg.EnvVar):  # used outside a run (CLI helpers, tests): resolve it now
                secret = secret.get_value()
            if secret is None and self.client_secret_env:
                secret = os.environ.get(self.client_secret_env) or None
                if secret is None:
                    raise ValueError(f"tenant {self.name}: environment variable {self.client_secret_env} is not set "
                                     f"or empty; export it with the client secret of app {self.client_id}")
            if secret is None and self.client_secret_file:
                secret = _read_secret_file(self.name, self.client_secret_file)
            conn = TenantConnection(
                name=self.name, tenant_id=self.tenant_id, client_id=self.client_id,
                client_secret=secret, authority=self.authority, graph_url=self.graph_url,
                certificate_path=self.certificate_path, certificate_thumbprint=self.certificate_thumbprint,
                ca_file=self.ca_file,
            )
            self._client = GraphClient(conn)
        return self._client


def _read_secret_file(tenant: str, path: str) -> str:
    """The client secret from a file; errors name the tenant and the file, never the content."""
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"tenant {tenant}: cannot read secret file {path} ({type(exc).__name__}); "
                         "create it or fix credential.file in the topology") from None
    if not value:
        raise ValueError(f"tenant {tenant}: secret file {path} is empty; write the app's client secret into it")
    return value


class StagingDuckDB(dg.ConfigurableResource):
    """The DuckDB staging file. Connections are opened per use by xts_pipeline.store (file-locked)."""

    path: str

    def db(self) -> Path:
        return Path(self.path)

    def connect(self):
        return store.connect(self.path)


class TopologyResource(dg.ConfigurableResource):
    """The sync topology (config file, optionally pointed at a sandbox)."""

    config_path: str
    sandbox: str | None = None

    def load(self) -> Any:
        return load_topology(self.config_path, self.sandbox)


@lru_cache(maxsize=8)
def _load_cached(config_path: str, sandbox: str | None, stamp: tuple[float, float]) -> Any:
    from xts_pipeline.config import load_config
    from xts_pipeline.config.sandbox_overlay import apply_sandbox

    topo = load_config(config_path)
    if sandbox:
        topo = apply_sandbox(topo, sandbox)
    return topo


def _stamp(config_path: str, sandbox: str | None) -> tuple[float, float]:
    def mtime(p: str | None) -> float:
        if not p:
            return 0.0
        f = Path(p) / "sandbox.json" if Path(p).is_dir() else Path(p)
        return f.stat().st_mtime if f.exists() else 0.0

    return mtime(config_path), mtime(sandbox)


def load_topology(config_path: str, sandbox: str | None = None) -> Any:
    """Load (and cache until the files change) the topology, with the sandbox overlay when given."""
    return _load_cached(str(config_path), sandbox, _stamp(str(config_path), sandbox))


def secret_env_name(tenant_name: str) -> str:
    return "XTS_SECRET_" + "".join(c if c.isalnum() else "_" for c in tenant_name).upper()


def graph_resources(config_path: str, sandbox: str | None) -> dict[str, GraphTenantResource]:
    """`graph_<tenant>` -> resource for every tenant; secrets only as EnvVar references.

    With a sandbox, its generated secrets are exported into this process's environment under the
    tenant's variable name, so the same EnvVar path serves rehearsals and real tenants.
    """
    from xts_pipeline.config import load_config

    plain = load_config(config_path)
    topo = load_topology(config_path, sandbox)
    out: dict[str, GraphTenantResource] = {}
    for name, tenant in topo.tenants.items():
        cred = plain.tenants[name].credential
        env = cred.env or secret_env_name(name)
        if sandbox:
            os.environ[env] = tenant.resolve_secret().get_secret_value()
        kwargs: dict[str, Any] = {}
        if cred.certificate and not sandbox:
            cert = tenant.resolve_certificate()  # handles `thumbprint` and `thumbprint_env`
            kwargs = {"certificate_path": str(cert.certificate_path), "certificate_thumbprint": cert.thumbprint}
        elif cred.file and not sandbox:
            kwargs = {"client_secret_file": str(cred.file)}
        else:
            kwargs = {"client_secret_env": env}
        out[resource_key(name)] = GraphTenantResource(
            name=name, tenant_id=tenant.tenant_id, client_id=tenant.client_id, authority=tenant.authority,
            graph_url=tenant.graph_url, ca_file=str(tenant.ca_file) if tenant.ca_file else None,
            app_object_id=tenant.app_object_id, **kwargs,
        )
    return out


def resource_key(tenant_name: str) -> str:
    return "graph_" + "".join(c if c.isalnum() else "_" for c in tenant_name).lower()
