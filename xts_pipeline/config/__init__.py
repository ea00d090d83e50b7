"""Topology configuration: YAML -> validated, expanded pydantic models.

    topo = load_config(resolve_config_path(args.config))
    for pair in topo.pairs(): ...
"""

from xts_pipeline.vocabulary import pair_key, pair_name

from .errors import ConfigError, ConfigIssue, format_path
from .loader import CONFIG_ENV, default_config_path, load_config, resolve_config_path
from .models import (
    CertificateCredential,
    CredentialConfig,
    DeprovisionConfig,
    ScheduleConfig,
    ScopeConfig,
    StagingConfig,
    StorageConfig,
    SyncSettings,
    TargetObjectActions,
    TenantConfig,
)
from .permissions import (
    PermissionNeed,
    optional_permissions_for_roles,
    permission_needs,
    permissions_for_roles,
)
from .sandbox_overlay import apply_sandbox, read_sandbox_info
from .topology import SyncPair, Topology

__all__ = [
    "CONFIG_ENV",
    "CertificateCredential",
    "ConfigError",
    "ConfigIssue",
    "CredentialConfig",
    "DeprovisionConfig",
    "PermissionNeed",
    "ScheduleConfig",
    "ScopeConfig",
    "StagingConfig",
    "StorageConfig",
    "SyncPair",
    "SyncSettings",
    "TargetObjectActions",
    "TenantConfig",
    "Topology",
    "apply_sandbox",
    "default_config_path",
    "format_path",
    "load_config",
    "pair_key",
    "optional_permissions_for_roles",
    "pair_name",
    "permission_needs",
    "permissions_for_roles",
    "read_sandbox_info",
    "resolve_config_path",
]
