"""What must hold before a cycle starts, checked at config load in well under a second.

A missing secret variable used to surface ~65 s later as a Dagster config error per run. Here every
tenant a run needs has its credential resolved up front (env var set and non-empty, file readable,
certificate thumbprint available); the ConfigError names the tenant, the variable or file and the line
of the topology file. Nothing is read from Graph and no value is ever printed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from xts_pipeline.config import ConfigError, ConfigIssue


def tenants_for(topology: Any, pair_keys: Iterable[str] | None) -> list[str]:
    """Tenants the selected (enabled) pairs read from or write to."""
    wanted = set(pair_keys) if pair_keys is not None else None
    names: set[str] = set()
    for p in topology.pairs():
        if p.enabled and (wanted is None or p.key in wanted):
            names |= {p.source, p.target}
    return sorted(names)


def check_credentials(topology: Any, tenants: Iterable[str]) -> None:
    """Raise one ConfigError listing every tenant whose credential cannot be read now."""
    issues: list[ConfigIssue] = []
    file = "<config>"
    for name in tenants:
        tenant = topology.tenant(name)
        try:
            if tenant.credential.certificate is not None:
                tenant.resolve_certificate()
            else:
                tenant.resolve_secret()
        except ConfigError as exc:
            file = exc.file
            issues.extend(exc.issues)
    if issues:
        raise ConfigError(file, issues)
