"""Dagster resources: Graph access for every tenant, the DuckDB staging file, and the topology.

Kept tiny: each resource only carries settings and builds the library object (GraphClient, a DuckDB
path, a Topology). `GraphResource` holds one typed settings block per tenant; a tenant's secret is an
`EnvVar` (the UI and the event log show the variable's name, Dagster resolves it when a run starts), a file
path, or, against a sandbox, the one its sandbox.json held when the definitions were built (kept in this
process, as an exported variable would be). Nothing is ever written into the environment, and no secret
appears in a repr, an error or the UI.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field, PrivateAttr

from xts_pipeline import store

if TYPE_CHECKING:
    from xts_pipeline.graph import GraphClient


class GraphTenant(dg.Config):
    """How to reach one tenant's Microsoft Graph (one app registration); exactly one secret source is set."""

    tenant_id: str
    client_id: str
    authority: str | None = None
    graph_url: str = "https://graph.microsoft.com/v1.0"
    # `dg.EnvVar(name)` for real tenants: shown and stored as the variable's name, resolved when a run starts.
    # A plain string (tests, helpers) is kept out of reprs.
    client_secret: str | None = Field(default=None, repr=False)
    # Or a file holding the secret, read when the client is built (never exported to the environment).
    client_secret_file: str | None = None
    # Or the sandbox's sandbox.json (or its state directory): the tenant's generated secret as it was when the
    # definitions were built, so a rehearsal needs no variable; rebuilt definitions read a rotated secret.
    sandbox: str | None = None
    certificate_path: str | None = None
    certificate_thumbprint: str | None = None
    ca_file: str | None = None
    app_object_id: str | None = None


class GraphResource(dg.ConfigurableResource):
    """Microsoft Graph for every tenant of the topology, through xts_pipeline.graph.GraphClient."""

    tenants: dict[str, GraphTenant]

    _clients: dict[str, Any] = PrivateAttr(default_factory=dict)  # tenant -> GraphClient

    def client(self, tenant: str) -> GraphClient:
        """The tenant's GraphClient, one per tenant for this resource (Dagster builds a fresh resource for every
        run): a run shares its MSAL token cache and connection pool, and the next run asks for a new token, so a
        permission granted or revoked between runs takes effect at once."""
        settings = self.tenants.get(tenant)
        if settings is None:
            raise ValueError(f"tenant {tenant} is not in the topology's tenants ({', '.join(sorted(self.tenants))}); "
                             "add it under `tenants:` and reload the definitions")
        if tenant not in self._clients:
            self._clients[tenant] = _client(tenant, settings)
        return self._clients[tenant]


def _client(tenant: str, settings: GraphTenant) -> GraphClient:
    """A GraphClient for these settings, its secret read now from its one source."""
    from xts_pipeline.graph import GraphClient, TenantConnection

    secret = _secret(tenant, settings)
    conn = TenantConnection(
        name=tenant, tenant_id=settings.tenant_id, client_id=settings.client_id, client_secret=secret,
        authority=settings.authority, graph_url=settings.graph_url,
        certificate_path=settings.certificate_path, certificate_thumbprint=settings.certificate_thumbprint,
        ca_file=settings.ca_file,
    )
    return GraphClient(conn)


def _secret(tenant: str, settings: GraphTenant) -> str | None:
    """The tenant's client secret from its one source; errors name the tenant and the source, never the value."""
    value = settings.client_secret
    if isinstance(value, dg.EnvVar):  # outside a run (CLI helpers, tests) Dagster has not resolved it
        name = value.env_var_name
        value = value.get_value()
        if not value:
            raise ValueError(f"tenant {tenant}: environment variable {name} is not set or empty; "
                             f"export it with the client secret of app {settings.client_id}")
    if value is None and settings.client_secret_file:
        value = _read_secret_file(tenant, settings.client_secret_file)
    if value is None and settings.sandbox:
        value = _sandbox_secret(tenant, settings.sandbox)
    return value


# Sandbox secrets as they were when the definitions were built, as an exported variable would hold them: a
# secret the sandbox rotates afterwards is refused (and quarantines the pair) until the definitions are rebuilt.
_SANDBOX_SECRETS: dict[tuple[str, str], str] = {}


def _sandbox_secret(tenant: str, sandbox: str) -> str:
    """The tenant's secret from the sandbox's sandbox.json: the one read when the definitions were built."""
    return _SANDBOX_SECRETS.get((sandbox, tenant)) or _read_sandbox_secret(tenant, sandbox)


def _read_sandbox_secret(tenant: str, sandbox: str) -> str:
    """The tenant's generated secret in the sandbox's sandbox.json (0600, written by the sandbox)."""
    from xts_pipeline.config.sandbox_overlay import read_sandbox_info

    entry = next((t for t in read_sandbox_info(sandbox)["tenants"] if isinstance(t, dict) and t.get("name") == tenant),
                 None)
    value = entry.get("client_secret") if entry else None
    if not isinstance(value, str) or not value:
        raise ValueError(f"tenant {tenant}: the sandbox at {sandbox} has no client secret for it; seed it with "
                         f"`xts sandbox seed --state {sandbox} --tenant {tenant}` or restart the sandbox")
    return value


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


def graph_resource(config_path: str, sandbox: str | None) -> GraphResource:
    """The Graph resource for every tenant of the topology; secrets only as references (variable, file, sandbox)."""
    topo = load_topology(config_path, sandbox)
    tenants: dict[str, GraphTenant] = {}
    for name, tenant in topo.tenants.items():
        cred = tenant.credential
        source: dict[str, Any]
        if sandbox:
            source = {"sandbox": sandbox}
            try:
                _SANDBOX_SECRETS[(sandbox, name)] = _read_sandbox_secret(name, sandbox)
            except (OSError, ValueError):
                _SANDBOX_SECRETS.pop((sandbox, name), None)  # read (and named) when the client is built
        elif cred.certificate:
            cert = tenant.resolve_certificate()  # handles `thumbprint` and `thumbprint_env`
            source = {"certificate_path": str(cert.certificate_path), "certificate_thumbprint": cert.thumbprint}
        elif cred.file:
            source = {"client_secret_file": str(cred.file)}
        elif cred.env:
            source = {"client_secret": dg.EnvVar(cred.env)}
        else:  # a sandbox credential without a sandbox to read it from
            raise ValueError(f"tenant {name}: {cred.describe()} credential needs the sandbox; pass --sandbox")
        tenants[name] = GraphTenant(
            tenant_id=tenant.tenant_id, client_id=tenant.client_id, authority=tenant.authority,
            graph_url=tenant.graph_url, ca_file=str(tenant.ca_file) if tenant.ca_file else None,
            app_object_id=tenant.app_object_id, **source,
        )
    return GraphResource(tenants=tenants)
