"""load_config: YAML file -> validated Topology, or one ConfigError listing every problem.

Checks run in passes so one mistake does not hide the others: inline secrets are refused first,
then rules (mappings, scoping filters) are checked where they are written, then the pydantic
models, then the topology expansion. Every problem gets the YAML line of the path it names.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from . import rules
from .errors import ConfigError, ConfigIssue, PathT, did_you_mean
from .explain import issues_from
from .models import ScopingFilter
from .packaged import default_config_path
from .topology import Topology, expand
from .yaml_source import YamlSource, read_yaml

CONFIG_ENV = "XTS_CONFIG"
_FILTERS = TypeAdapter(list[ScopingFilter])
_SECRET_WORDS = ("secret", "password", "passwd", "private_key", "client_assertion")
_INLINE_CREDENTIAL_HELP = (
    "inline secrets are refused: a secret in a config file leaks through version control and backups. "
    "Delete it, keep the secret in an environment variable or a file readable only by the pipeline, and "
    "write `credential: {env: XTS_SECRET_<TENANT>}` or `credential: {file: /path/to/secret}`."
)


def resolve_config_path(cli_value: str | os.PathLike[str] | None, *, fallback_to_demo: bool = False) -> Path:
    """--config wins, then $XTS_CONFIG; the packaged demo only when asked (`xts sync --sandbox`)."""
    if cli_value:
        path, origin = Path(cli_value), "--config"
    elif os.environ.get(CONFIG_ENV):
        path, origin = Path(os.environ[CONFIG_ENV]), f"${CONFIG_ENV}"
    elif fallback_to_demo:
        return default_config_path()
    else:
        raise ConfigError(
            "<no config file>",
            [ConfigIssue((), f"no topology file given: pass --config PATH or set {CONFIG_ENV}=PATH "
                             "(with --sandbox, the packaged demo topology is used).")],
        )
    path = path.expanduser()
    if not path.is_file():
        raise ConfigError(str(path), [ConfigIssue((), f"file not found (from {origin}); check the path.")])
    return path


def load_config(path: str | os.PathLike[str]) -> Topology:
    """Read, validate and expand a topology file. Raises ConfigError naming file, path and line."""
    path = Path(path).expanduser()
    src = read_yaml(path)
    return topology_from_source(src, base_dir=path.resolve().parent)


def topology_from_source(src: YamlSource, base_dir: Path) -> Topology:
    """Validate parsed YAML (used by load_config, and by tests on in-memory text)."""
    issues: list[ConfigIssue] = list(src.duplicates)
    if not isinstance(src.data, dict):
        issues.append(ConfigIssue((), "the file must be a YAML mapping with `tenants:` and `topology:` at the top."))
        raise _error(src, issues)
    data = copy.deepcopy(src.data)
    suppressed = _refuse_inline_secrets(data, issues)
    issues += _check_rules(data)

    topo: Topology | None = None
    try:
        topo = Topology.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        issues += [i for i in issues_from(exc, Topology) if i.path not in suppressed]
        issues += _check_references(data)
    if topo is not None:
        pairs, more = expand(topo, src.mark, compile_mappings=not issues)
        issues += more
        topo._pairs = pairs
    if issues:
        raise _error(src, issues)
    assert topo is not None
    topo._source_file = src.file
    for tenant in topo.tenants.values():
        tenant._source_file = src.file
    return topo


def _error(src: YamlSource, issues: list[ConfigIssue]) -> ConfigError:
    placed = []
    for issue in issues:
        inside = None
        if issue.expr_line is not None and issue.expr_column is not None:
            inside = src.position_in_scalar(issue.path, issue.expr_line, issue.expr_column)
        if inside is not None:
            issue = ConfigIssue(issue.path, issue.message, *inside, issue.expr_line, issue.expr_column)
        elif issue.line is None:
            line, column = src.mark(issue.path)
            issue = ConfigIssue(issue.path, issue.message, line, column, issue.expr_line, issue.expr_column)
        placed.append(issue)
    placed.sort(key=lambda i: (i.line or 0, i.column or 0))
    return ConfigError(src.file, placed)


def _is_secret_key(key: Any) -> bool:
    return isinstance(key, str) and any(word in key.lower() for word in _SECRET_WORDS)


def _refuse_inline_secrets(data: dict[str, Any], issues: list[ConfigIssue]) -> set[PathT]:
    """Remove inline secrets from the data before anything can echo them; returns paths to stay quiet about."""
    suppressed: set[PathT] = set()
    tenants = data.get("tenants")
    if not isinstance(tenants, dict):
        return suppressed
    for name, body in tenants.items():
        if not isinstance(body, dict):
            continue
        for key in [k for k in body if _is_secret_key(k)]:
            del body[key]
            issues.append(ConfigIssue(("tenants", name, key), f"tenant '{name}': {_INLINE_CREDENTIAL_HELP}"))
        cred = body.get("credential")
        if isinstance(cred, dict):
            for key in [k for k in cred if _is_secret_key(k)]:
                del cred[key]
                issues.append(ConfigIssue(("tenants", name, "credential", key), f"tenant '{name}': {_INLINE_CREDENTIAL_HELP}"))
        elif cred is not None:
            del body["credential"]
            suppressed.add(("tenants", name, "credential"))
            issues.append(ConfigIssue(("tenants", name, "credential"),
                                      f"tenant '{name}': credential must be a mapping such as `{{env: VAR_NAME}}`, "
                                      f"never the secret itself; {_INLINE_CREDENTIAL_HELP}"))
        if any(p[:3] == ("tenants", name, "credential") for p in (i.path for i in issues)):
            suppressed.add(("tenants", name, "credential"))
    return suppressed


def _fragments(data: dict[str, Any]) -> list[tuple[PathT, dict[str, Any]]]:
    """Every place in the file that may carry sync settings."""
    out: list[tuple[PathT, dict[str, Any]]] = []
    if isinstance(data.get("sync_defaults"), dict):
        out.append((("sync_defaults",), data["sync_defaults"]))
    for section in ("topology", "sync"):
        items = data.get(section)
        if isinstance(items, list):
            out += [((section, i), item) for i, item in enumerate(items) if isinstance(item, dict)]
    return out


def _check_rules(data: dict[str, Any]) -> list[ConfigIssue]:
    """Mappings and scoping filters, checked where they are written (so errors point there)."""
    issues: list[ConfigIssue] = []
    for base, fragment in _fragments(data):
        mappings = fragment.get("mappings")
        if isinstance(mappings, list):
            for k, mapping in enumerate(mappings):
                for p in rules.check_mapping(mapping):
                    issues.append(ConfigIssue((*base, "mappings", k, *p.path), p.message,
                                              expr_line=p.expr_line, expr_column=p.expr_column))
        scope = fragment.get("scope")
        filters = scope.get("filters") if isinstance(scope, dict) else None
        if isinstance(filters, list) and filters:
            try:
                _FILTERS.validate_python(filters)
            except ValidationError:
                continue  # the model pass reports the structural problem
            for p in rules.check_filters(filters):
                issues.append(ConfigIssue((*base, "scope", "filters", *p.path), p.message))
    return issues


def _check_references(data: dict[str, Any]) -> list[ConfigIssue]:
    """Unknown tenant names in blocks and overrides, found on the raw data when the models failed."""
    tenants = data.get("tenants")
    if not isinstance(tenants, dict):
        return []
    known = [str(k) for k in tenants]
    refs: list[tuple[PathT, Any]] = []
    blocks = data.get("topology")
    for i, block in enumerate(blocks if isinstance(blocks, list) else []):
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("mesh"), list):
            refs += [(("topology", i, "mesh", j), n) for j, n in enumerate(block["mesh"])]
        for kind in ("hub_outbound", "hub_inbound"):
            hub = block.get(kind)
            if isinstance(hub, dict):
                refs.append((("topology", i, kind, "hub"), hub.get("hub")))
                if isinstance(hub.get("spokes"), list):
                    refs += [(("topology", i, kind, "spokes", j), n) for j, n in enumerate(hub["spokes"])]
        if isinstance(block.get("pair"), dict):
            refs += [(("topology", i, "pair", k), block["pair"].get(k)) for k in ("source", "target")]
    entries = data.get("sync")
    for j, entry in enumerate(entries if isinstance(entries, list) else []):
        if isinstance(entry, dict):
            refs += [(("sync", j, k), entry.get(k)) for k in ("source", "target")]
    if isinstance(data.get("inbound_policies"), dict):
        for k, policy in data["inbound_policies"].items():
            refs.append((("inbound_policies", k), k))
            sources = policy.get("allowed_sources") if isinstance(policy, dict) else None
            if isinstance(sources, list):
                refs += [(("inbound_policies", k, "allowed_sources", j), n) for j, n in enumerate(sources)]
    return [
        ConfigIssue(path, f"unknown tenant '{name}'.{did_you_mean(str(name), known)} "
                          f"Declare it under `tenants:` or use one of: {', '.join(known)}.")
        for path, name in refs
        if isinstance(name, str) and name not in tenants
    ]
