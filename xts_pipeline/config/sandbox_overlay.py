"""apply_sandbox: point every tenant of a topology at a running local Graph sandbox.

The sandbox's client secrets stay in SecretStr inside the returned topology; they are excluded
from dumps and masked in reprs, and never written back to any file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from .errors import ConfigError, ConfigIssue
from .models import CredentialConfig
from .topology import Topology


def _sandbox_file(path: str | os.PathLike[str]) -> Path:
    """Accept the sandbox state directory or its sandbox.json."""
    p = Path(path).expanduser()
    return p / "sandbox.json" if p.is_dir() else p


def read_sandbox_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed sandbox.json; errors say how to start the sandbox."""
    file = _sandbox_file(path)
    try:
        info = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(file), [ConfigIssue((), "sandbox.json not found; start the sandbox with "
                                                      f"`xts sandbox serve --state {file.parent}` first.")]) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(str(file), [ConfigIssue((), f"cannot read sandbox.json ({type(exc).__name__}); "
                                                      "restart the sandbox to rewrite it.")]) from None
    if not isinstance(info, dict) or not isinstance(info.get("tenants"), list):
        raise ConfigError(str(file), [ConfigIssue(("tenants",), "sandbox.json has no `tenants` list; "
                                                                "restart the sandbox to rewrite it.")])
    return info


def apply_sandbox(topology: Topology, sandbox_json_path: str | os.PathLike[str]) -> Topology:
    """A copy of `topology` whose tenants (matched by name) sign in to and call the sandbox."""
    file = _sandbox_file(sandbox_json_path)
    info = read_sandbox_info(file)
    by_name = {t.get("name"): t for t in info["tenants"] if isinstance(t, dict)}
    missing = [name for name in topology.tenants if name not in by_name]
    if missing:
        raise ConfigError(str(file), [ConfigIssue(
            ("tenants",),
            f"tenant '{name}' of {topology.source_file} is not in this sandbox (it has: "
            f"{', '.join(str(n) for n in by_name) or 'none'}); seed it with "
            f"`xts sandbox seed --state {file.parent} --tenant {name} --users N` or remove it from the topology.",
        ) for name in missing])
    ca_file = info.get("ca_file")
    graph_url = info.get("graph_url")
    tenants = {}
    for name, tenant in topology.tenants.items():
        sb = by_name[name]
        try:
            update = {
                "tenant_id": sb["tenant_id"],
                "domain": sb["domain"],
                "authority": sb["authority"],
                "graph_url": sb.get("graph_url") or graph_url,
                "client_id": sb["client_id"],
                "app_object_id": sb.get("app_object_id"),
                "ca_file": Path(ca_file) if ca_file else None,
                "credential": CredentialConfig(sandbox_secret=SecretStr(sb["client_secret"])),
            }
        except KeyError as exc:
            raise ConfigError(str(file), [ConfigIssue(("tenants", name), f"sandbox entry for '{name}' lacks "
                                                      f"{exc.args[0]!r}; restart the sandbox to rewrite sandbox.json.")]) from None
        body = {k: v for k, v in tenant.model_dump(exclude={"credential"}).items()}
        body.update(update)
        fresh = type(tenant).model_validate(body)
        fresh._source_file = tenant._source_file
        tenants[name] = fresh
    result = topology.model_copy(update={"tenants": tenants})
    result._source_file = topology._source_file
    return result
