"""The Topology model and its expansion from concise blocks into resolved source->target pairs.

A mesh of N tenants is written once and yields N*(N-1) pairs. Settings merge in this order:
`sync_defaults`, then every block that generates the pair (they must agree), then `sync:` overrides.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, ValidationError, model_validator

from xts_pipeline.guardrails.policy import InboundPolicy
from xts_pipeline.vocabulary import pair_key, pair_name

from . import rules
from .errors import ConfigError, ConfigIssue, PathT, did_you_mean, format_path
from .merge import conflicts, deep_merge
from .models import (
    ScheduleConfig,
    ScopeConfig,
    StagingConfig,
    StorageConfig,
    StrictModel,
    SyncOverride,
    SyncSettings,
    TargetObjectActions,
    TenantConfig,
    TopologyBlock,
)
from .packaged import default_config_path
from .permissions import PermissionNeed
from .permissions import permission_needs as _permission_needs

MarkFn = Callable[[PathT], tuple[int | None, int | None]]


@dataclass(frozen=True)
class SyncPair:
    """One fully resolved sync configuration (source -> target)."""

    source: str
    target: str
    settings: SyncSettings
    mapping_specs: list[Any] = field(repr=False)
    mappings: Any = field(repr=False)
    declared_in: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return pair_key(self.source, self.target)

    @property
    def name(self) -> str:
        return pair_name(self.source, self.target)

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    @property
    def scope(self) -> ScopeConfig:
        return self.settings.scope

    @property
    def user_type(self) -> Literal["Member", "Guest"]:
        """The userType invitations create (the apply rule lives in the compiled userType mapping)."""
        ut = self.settings.user_type
        return ut if isinstance(ut, str) else ut.value

    @property
    def drift(self) -> Literal["report", "repair"]:
        return self.settings.drift

    @property
    def show_in_address_list(self) -> bool:
        return self.settings.show_in_address_list

    @property
    def deprovision_action(self) -> Literal["delete", "disable", "none"]:
        return self.settings.deprovision.action

    @property
    def target_object_actions(self) -> TargetObjectActions:
        return self.settings.target_object_actions

    @property
    def allow_create(self) -> bool:
        return self.settings.target_object_actions.create

    @property
    def allow_update(self) -> bool:
        return self.settings.target_object_actions.update

    @property
    def allow_delete(self) -> bool:
        return self.settings.target_object_actions.delete

    @property
    def filters(self) -> list[dict[str, Any]]:
        """Scoping filters in the plain-dict shape xts_pipeline.scoping.in_scope takes."""
        return [f.model_dump() for f in self.settings.scope.filters]


class Topology(StrictModel):
    """A whole topology file: tenants, how they sync, and the pipeline's own settings."""

    tenants: dict[str, TenantConfig] = Field(min_length=1, description="tenant name -> tenant settings")
    topology: list[TopologyBlock] = Field(default_factory=list, description="mesh / hub_outbound / hub_inbound / pair blocks")
    sync_defaults: SyncSettings = Field(default_factory=SyncSettings, description="settings every pair starts from")
    sync: list[SyncOverride] = Field(default_factory=list, description="per-pair overrides with source/target")
    inbound_policies: dict[str, InboundPolicy] = Field(default_factory=dict, description="target name -> inbound policy")
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    staging: StagingConfig = Field(default_factory=StagingConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)

    _source_file: str | None = PrivateAttr(None)
    _pairs: list[SyncPair] | None = PrivateAttr(None)

    @model_validator(mode="before")
    @classmethod
    def _name_tenants(cls, data: Any) -> Any:
        """Each tenant learns its own name from its key under `tenants:`."""
        if isinstance(data, dict) and isinstance(data.get("tenants"), dict):
            tenants = {
                name: ({**body, "name": name} if isinstance(body, dict) else body)
                for name, body in data["tenants"].items()
            }
            data = {**data, "tenants": tenants}
        return data

    @property
    def source_file(self) -> str:
        return self._source_file or "<config>"

    def tenant(self, name: str) -> TenantConfig:
        """The tenant called `name`; an unknown name lists the known ones."""
        try:
            return self.tenants[name]
        except KeyError:
            raise ConfigError(
                self.source_file,
                [ConfigIssue(("tenants",), f"unknown tenant '{name}'.{did_you_mean(name, self.tenants)} "
                                           f"Known tenants: {', '.join(self.tenants)}.")],
            ) from None

    def pairs(self) -> list[SyncPair]:
        """Every sync pair, expanded and resolved (computed once)."""
        if self._pairs is None:
            found, issues = expand(self)
            if issues:
                raise ConfigError(self.source_file, issues)
            self._pairs = found
        return list(self._pairs)

    def pair(self, name_or_key: str) -> SyncPair:
        """Look a pair up by `source->target` or `source__target`."""
        for p in self.pairs():
            if name_or_key in (p.key, p.name):
                return p
        known = [p.name for p in self.pairs()]
        raise ConfigError(
            self.source_file,
            [ConfigIssue(("topology",), f"no sync pair '{name_or_key}'.{did_you_mean(name_or_key, known)} "
                                        f"Configured pairs: {', '.join(known) or 'none'}.")],
        )

    def inbound_policy(self, target: str) -> InboundPolicy:
        """The target's inbound policy, or the safe default when the file sets none."""
        self.tenant(target)
        return self.inbound_policies.get(target) or InboundPolicy()

    def roles(self, tenant: str) -> set[str]:
        """'source' and/or 'target', from the enabled pairs the tenant takes part in."""
        self.tenant(tenant)
        out: set[str] = set()
        for p in self.pairs():
            if p.enabled and p.source == tenant:
                out.add("source")
            if p.enabled and p.target == tenant:
                out.add("target")
        return out

    def required_permissions(self, tenant: str) -> list[str]:
        """Least-privilege Graph application permissions the tenant's app cannot sync without.

        Only the required ones: `optional_permissions` lists those that merely strengthen a guardrail,
        `permission_needs` both, with why.
        """
        return [n.permission for n in self.permission_needs(tenant) if n.required]

    def optional_permissions(self, tenant: str) -> list[str]:
        """Permissions the sync works without, at the cost of a weaker guardrail (the snapshot warns)."""
        return [n.permission for n in self.permission_needs(tenant) if not n.required]

    def permission_needs(self, tenant: str) -> list[PermissionNeed]:
        """Every permission for the tenant's roles in enabled pairs: required first, each with why."""
        roles = self.roles(tenant)
        uses_groups = any(p.enabled and p.source == tenant and p.scope.groups for p in self.pairs())
        return _permission_needs(roles, uses_assigned_groups=uses_groups)

    @property
    def duckdb_path(self) -> Path:
        """storage.duckdb_path, else $XTS_HOME/xts.duckdb, else xts.duckdb next to the config file.

        The packaged demo's folder is not ours to write in, so it uses the store's own default
        ($XTS_DUCKDB, else $DAGSTER_HOME/xts.duckdb).
        """
        if self.storage.duckdb_path is not None:
            return self.storage.duckdb_path
        home = os.environ.get("XTS_HOME")
        if home:
            return Path(home).expanduser() / "xts.duckdb"
        if self._source_file:
            src = Path(self._source_file)
            if src.resolve() != default_config_path().resolve():
                return src.resolve().parent / "xts.duckdb"
        from xts_pipeline.store import default_path

        return default_path()


@dataclass
class _Declaration:
    origin: PathT
    fragment: dict[str, Any]


def _no_marks(_path: PathT) -> tuple[int | None, int | None]:
    return (None, None)


def _where(path: PathT, mark: MarkFn) -> str:
    line, _ = mark(path)
    return f"{format_path(path)} (line {line})" if line else format_path(path)


def expand(
    topo: Topology, mark: MarkFn = _no_marks, compile_mappings: bool = True
) -> tuple[list[SyncPair], list[ConfigIssue]]:
    """Expand topology blocks into resolved pairs; all problems are returned, none raised.

    With compile_mappings=False (mappings already known to be broken) pairs carry no compiled mappings.
    """
    issues: list[ConfigIssue] = []
    known = list(topo.tenants)

    def check_tenant(name: str, path: PathT) -> bool:
        if name in topo.tenants:
            return True
        issues.append(ConfigIssue(path, f"unknown tenant '{name}'.{did_you_mean(name, known)} "
                                        f"Declare it under `tenants:` or use one of: {', '.join(known)}."))
        return False

    declared: dict[tuple[str, str], list[_Declaration]] = {}
    for i, block in enumerate(topo.topology):
        for src_tgt in _generate(block, ("topology", i, block.kind), check_tenant, issues):
            declared.setdefault(src_tgt, []).append(_Declaration(("topology", i), block.settings_fragment()))

    overrides: dict[tuple[str, str], list[_Declaration]] = {}
    for j, ov in enumerate(topo.sync):
        path: PathT = ("sync", j)
        ok = check_tenant(ov.source, (*path, "source")) & check_tenant(ov.target, (*path, "target"))
        if not ok:
            continue
        if ov.source == ov.target:
            issues.append(ConfigIssue((*path, "target"), f"{ov.source}->{ov.target} syncs a tenant to itself; "
                                      "pick a different target."))
            continue
        if (ov.source, ov.target) not in declared:
            existing = [pair_name(*k) for k in declared]
            issues.append(ConfigIssue(path, f"no topology block generates {pair_name(ov.source, ov.target)}, so "
                                      "this override applies to nothing. Add `- pair: {source: "
                                      f"{ov.source}, target: {ov.target}}}` under `topology:` or fix the names "
                                      f"(configured pairs: {', '.join(existing) or 'none'})."))
            continue
        overrides.setdefault((ov.source, ov.target), []).append(_Declaration(path, ov.settings_fragment()))

    for name, policy in topo.inbound_policies.items():
        check_tenant(name, ("inbound_policies", name))
        for k, src in enumerate(getattr(policy, "allowed_sources", None) or []):
            check_tenant(src, ("inbound_policies", name, "allowed_sources", k))

    defaults = topo.sync_defaults.model_dump(exclude_unset=True)
    pairs: list[SyncPair] = []
    for (source, target), decls in declared.items():
        later = overrides.get((source, target), [])
        ok = _agree(decls, source, target, mark, issues, "topology blocks that generate the same pair must agree; "
                    "put the difference in a `sync:` entry for this pair")
        ok &= _agree(later, source, target, mark, issues, "merge these `sync:` entries into one")
        if not ok:
            continue
        merged = defaults
        for d in (*decls, *later):
            merged = deep_merge(merged, d.fragment)
        origins = tuple(format_path(d.origin) for d in (*decls, *later))
        blame: PathT = later[-1].origin if later else decls[-1].origin
        pair = _resolve(source, target, merged, origins, blame, topo, issues, compile_mappings)
        if pair is not None:
            pairs.append(pair)
    return pairs, issues


def _generate(block: TopologyBlock, base: PathT, check_tenant: Callable[[str, PathT], bool],
              issues: list[ConfigIssue]) -> list[tuple[str, str]]:
    """The (source, target) pairs one block generates; none when it names unknown or repeated tenants."""
    if block.mesh is not None:
        names = block.mesh
        ok = _unique(names, base, issues) & all([check_tenant(n, (*base, j)) for j, n in enumerate(names)])
        return [(a, b) for a in names for b in names if a != b] if ok else []
    hub_spec = block.hub_outbound or block.hub_inbound
    if hub_spec is not None:
        ok = check_tenant(hub_spec.hub, (*base, "hub"))
        ok &= _unique(hub_spec.spokes, (*base, "spokes"), issues)
        for j, spoke in enumerate(hub_spec.spokes):
            ok &= check_tenant(spoke, (*base, "spokes", j))
            if spoke == hub_spec.hub:
                ok = False
                issues.append(ConfigIssue((*base, "spokes", j), f"'{spoke}' is the hub and a spoke; a tenant "
                                          "cannot sync to itself. Remove it from `spokes`."))
        if not ok:
            return []
        if block.hub_outbound is not None:
            return [(hub_spec.hub, s) for s in hub_spec.spokes]
        return [(s, hub_spec.hub) for s in hub_spec.spokes]
    assert block.pair is not None
    source, target = block.pair.source, block.pair.target
    ok = check_tenant(source, (*base, "source")) & check_tenant(target, (*base, "target"))
    if source == target:
        issues.append(ConfigIssue((*base, "target"), f"pair {source}->{target} syncs a tenant to itself; "
                                  "pick a different target."))
        return []
    return [(source, target)] if ok else []


def _unique(names: list[str], path: PathT, issues: list[ConfigIssue]) -> bool:
    seen: set[str] = set()
    ok = True
    for j, name in enumerate(names):
        if name in seen:
            issues.append(ConfigIssue((*path, j), f"'{name}' is listed twice; remove the duplicate."))
            ok = False
        seen.add(name)
    return ok


def _agree(decls: list[_Declaration], source: str, target: str, mark: MarkFn,
           issues: list[ConfigIssue], fix: str) -> bool:
    ok = True
    for k, later in enumerate(decls):
        for earlier in decls[:k]:
            for path, first, second in conflicts(earlier.fragment, later.fragment):
                ok = False
                issues.append(ConfigIssue(
                    (*later.origin, *path),
                    f"conflicting settings for {pair_name(source, target)}: {format_path(path)} is {second!r} here "
                    f"but {first!r} in {_where(earlier.origin, mark)}; {fix}.",
                ))
    return ok


def _resolve(source: str, target: str, merged: dict[str, Any], origins: tuple[str, ...], blame: PathT,
             topo: Topology, issues: list[ConfigIssue], compile_mappings: bool) -> SyncPair | None:
    name = pair_name(source, target)
    try:
        settings = SyncSettings.model_validate(merged)
    except ValidationError as exc:
        for err in exc.errors(include_input=False, include_url=False):
            issues.append(ConfigIssue(blame, f"{name}, after merging {', '.join(('sync_defaults', *origins))}: "
                                             f"{format_path(tuple(err['loc']))}: {err['msg'].removeprefix('Value error, ')}."))
        return None
    if settings.enabled:
        if not settings.scope.all_members and not settings.scope.groups:
            issues.append(ConfigIssue(blame, f"{name} has an empty scope: set `scope: {{all_members: true}}` or list "
                                             "`scope.groups` (in sync_defaults, the topology block or a sync: entry), "
                                             "or set `enabled: false`."))
            return None
        if topo.tenants[target].app_object_id is None:
            issues.append(ConfigIssue(("tenants", target), f"tenant '{target}' is the target of {name} and needs "
                                      "`app_object_id` (the object id of its app registration) to register the "
                                      "directory extensions that link synced users."))
    if not compile_mappings:
        return SyncPair(source=source, target=target, settings=settings, mapping_specs=[], mappings=None,
                        declared_in=origins)
    try:
        specs, compiled = rules.merge_and_compile(
            settings.mappings, settings.user_type, settings.show_in_address_list
        )
    except Exception as exc:  # noqa: BLE001 - mappings were validated per fragment; report anything left
        issues.append(ConfigIssue(blame, f"{name}: the merged attribute mappings do not compile: {exc}. "
                                         "Check the mappings of this pair."))
        return None
    return SyncPair(source=source, target=target, settings=settings, mapping_specs=specs,
                    mappings=compiled, declared_in=origins)
