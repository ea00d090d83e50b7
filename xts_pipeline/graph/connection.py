"""TenantConnection: where a tenant's Entra authority and Graph API live, and how the app signs in.

Why a separate value object: config.py builds it, tests/sandbox build it, and GraphClient only reads
it. The secret is a pydantic SecretStr so `repr()`/`str()` of the connection never show it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from pydantic import SecretStr

__all__ = ["TenantConnection", "MICROSOFT_AUTHORITY_HOSTS", "DEFAULT_GRAPH_URL"]

DEFAULT_GRAPH_URL = "https://graph.microsoft.com/v1.0"
DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
# Hosts MSAL knows through instance discovery; any other host needs instance_discovery=False.
MICROSOFT_AUTHORITY_HOSTS = frozenset(
    {
        "login.microsoftonline.com",
        "login.microsoft.com",
        "login.windows.net",
        "sts.windows.net",
        "login.microsoftonline.us",
        "login.chinacloudapi.cn",
        "login.partner.microsoftonline.cn",
    }
)


@dataclass(frozen=True)
class TenantConnection:
    """Everything needed to talk to one tenant. Defaults are Microsoft's public cloud endpoints."""

    name: str
    tenant_id: str
    client_id: str
    client_secret: SecretStr | None = field(default=None, repr=False)
    authority: str | None = None
    graph_url: str = DEFAULT_GRAPH_URL
    certificate_path: str | None = None
    certificate_thumbprint: str | None = None
    ca_file: str | None = None
    scope: str | None = None  # default: "<graph host>/.default"

    def __post_init__(self) -> None:
        if isinstance(self.client_secret, str):  # accept a plain str but never keep it bare
            object.__setattr__(self, "client_secret", SecretStr(self.client_secret))
        if self.authority is None:
            object.__setattr__(self, "authority", f"{DEFAULT_AUTHORITY_HOST}/{self.tenant_id}")
        object.__setattr__(self, "graph_url", self.graph_url.rstrip("/"))
        for label, url in (("authority", self.authority), ("graph_url", self.graph_url)):
            parts = urlsplit(url or "")
            if parts.scheme != "https" or not parts.netloc:
                raise ValueError(
                    f"tenant {self.name!r}: {label} {url!r} must be an https URL; fix it in the tenant config"
                )
        if self.client_secret is None and self.certificate_path is None:
            raise ValueError(
                f"tenant {self.name!r}: no credential; give a client secret or a certificate in the tenant config"
            )
        if self.ca_file is not None:
            object.__setattr__(self, "ca_file", os.fspath(self.ca_file))

    @property
    def authority_host(self) -> str:
        return urlsplit(self.authority or "").hostname or ""

    @property
    def is_microsoft_authority(self) -> bool:
        return self.authority_host.lower() in MICROSOFT_AUTHORITY_HOSTS

    @property
    def graph_scope(self) -> str:
        """The client-credentials scope: `https://<graph host>/.default` unless configured."""
        if self.scope:
            return self.scope
        parts = urlsplit(self.graph_url)
        if self.is_microsoft_authority or parts.hostname in ("graph.microsoft.com",):
            return f"{parts.scheme}://{parts.netloc}/.default"
        return "https://graph.microsoft.com/.default"  # local/sandbox Graph stands in for Microsoft's
