"""Pydantic models of the topology file's sections: tenants, credentials, sync settings, blocks.

Models are strict (unknown keys are errors) and frozen, so a loaded topology cannot drift at runtime.
Relative paths resolve against the config file's directory, passed as validation context `base_dir`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .errors import ConfigError, ConfigIssue

GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
DOMAIN_RE = re.compile(r"^(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TENANT_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
THUMBPRINT_RE = re.compile(r"^[0-9A-Fa-f]{40}$|^[0-9A-Fa-f]{64}$")
CRON_FIELD_RE = re.compile(r"^[0-9A-Za-z*/,?-]+$")

DEFAULT_LOGIN_HOST = "https://login.microsoftonline.com"
DEFAULT_GRAPH_URL = "https://graph.microsoft.com/v1.0"


class StrictModel(BaseModel):
    """Base: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _guid(value: str, what: str) -> str:
    if not GUID_RE.fullmatch(value):
        raise ValueError(
            f"{what} '{value}' is not a GUID; copy it from the Entra admin center "
            "(format 00000000-0000-0000-0000-000000000000)"
        )
    return value.lower()


def _https_url(value: str, what: str, need_path: bool) -> str:
    value = value.rstrip("/")
    if not value.lower().startswith("https://"):
        raise ValueError(f"{what} must start with https:// (TLS is never optional); got '{value}'")
    host_and_path = value[len("https://") :]
    if not host_and_path or host_and_path.startswith("/"):
        raise ValueError(f"{what} '{value}' has no host name")
    if need_path and "/" not in host_and_path:
        raise ValueError(
            f"{what} '{value}' needs a tenant path segment, e.g. {DEFAULT_LOGIN_HOST}/<tenant_id>"
        )
    return value


def _resolve_path(value: Path | None, info: ValidationInfo) -> Path | None:
    """Resolve a relative path against the config file's directory (context `base_dir`)."""
    if value is None:
        return None
    value = Path(os.path.expanduser(str(value)))
    base = (info.context or {}).get("base_dir") if info.context is not None else None
    if not value.is_absolute() and base is not None:
        value = Path(base) / value
    return value


class CertificateCredential(BaseModel):
    """What MSAL needs for certificate auth: the PEM path and the certificate's thumbprint."""

    model_config = ConfigDict(frozen=True)

    certificate_path: Path
    thumbprint: str


class CredentialConfig(StrictModel):
    """Where a tenant's app secret comes from: an env var, a file, or a certificate. Never inline."""

    env: str | None = Field(None, description="name of the environment variable that holds the client secret")
    file: Path | None = Field(None, description="path of a file whose content is the client secret")
    certificate: Path | None = Field(None, description="path of a PEM file with the private key and certificate")
    thumbprint: str | None = Field(None, description="SHA-1 (40 hex) or SHA-256 (64 hex) certificate thumbprint")
    thumbprint_env: str | None = Field(None, description="environment variable holding the thumbprint")
    sandbox_secret: SecretStr | None = Field(None, exclude=True, repr=False)

    @field_validator("env", "thumbprint_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and not ENV_NAME_RE.fullmatch(v):
            raise ValueError(
                "must be the NAME of an environment variable (letters, digits, underscores), "
                "not the secret itself"
            )
        return v

    @field_validator("thumbprint")
    @classmethod
    def _thumbprint(cls, v: str | None) -> str | None:
        if v is not None:
            v = v.replace(":", "").replace(" ", "")
            if not THUMBPRINT_RE.fullmatch(v):
                raise ValueError("must be the certificate thumbprint in hex (40 or 64 characters)")
        return v

    @field_validator("file", "certificate")
    @classmethod
    def _paths(cls, v: Path | None, info: ValidationInfo) -> Path | None:
        return _resolve_path(v, info)

    @model_validator(mode="after")
    def _exactly_one(self) -> CredentialConfig:
        chosen = [k for k in ("env", "file", "certificate", "sandbox_secret") if getattr(self, k) is not None]
        if len(chosen) != 1:
            raise ValueError(
                "set exactly one of `env: VAR_NAME`, `file: path/to/secret` or "
                f"`certificate: path.pem` (found {', '.join(chosen) or 'none'})"
            )
        if self.certificate is not None and (self.thumbprint is None) == (self.thumbprint_env is None):
            raise ValueError("a certificate credential needs exactly one of `thumbprint` or `thumbprint_env`")
        if self.certificate is None and (self.thumbprint or self.thumbprint_env):
            raise ValueError("`thumbprint`/`thumbprint_env` only go with `certificate:`")
        return self

    def describe(self) -> str:
        """Where the secret comes from, safe to print (never the value)."""
        if self.env:
            return f"env var {self.env}"
        if self.file:
            return f"file {self.file}"
        if self.certificate:
            return f"certificate {self.certificate}"
        return "the sandbox"


Role = Literal["source", "target"]


class TenantConfig(StrictModel):
    """One Entra tenant and the app registration the pipeline signs in with."""

    name: str = Field(description="the tenant's key under `tenants:`")
    tenant_id: str = Field(description="the directory (tenant) id, a GUID")
    domain: str = Field(description="a verified domain, e.g. contoso.onmicrosoft.com")
    authority: str | None = Field(None, description="token authority; default https://login.microsoftonline.com/<tenant_id>")
    graph_url: str = Field(DEFAULT_GRAPH_URL, description="Microsoft Graph base URL incl. version")
    client_id: str = Field(description="the application (client) id of the app registration, a GUID")
    app_object_id: str | None = Field(
        None, description="object id of the app registration; targets need it to register directory extensions"
    )
    credential: CredentialConfig = Field(description="`{env: VAR}`, `{file: path}` or `{certificate: path, thumbprint: ..}`")
    ca_file: Path | None = Field(None, description="PEM bundle to trust instead of the system CAs (sandbox, proxies)")

    _source_file: str | None = PrivateAttr(None)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not TENANT_NAME_RE.fullmatch(v) or "__" in v:
            raise ValueError(
                f"tenant name '{v}' must start with a letter and use letters, digits, '-' or single '_' "
                "(pair keys join names with '__')"
            )
        return v

    @field_validator("tenant_id")
    @classmethod
    def _tid(cls, v: str) -> str:
        return _guid(v, "tenant_id")

    @field_validator("client_id")
    @classmethod
    def _cid(cls, v: str) -> str:
        return _guid(v, "client_id")

    @field_validator("app_object_id")
    @classmethod
    def _oid(cls, v: str | None) -> str | None:
        return None if v is None else _guid(v, "app_object_id")

    @field_validator("domain")
    @classmethod
    def _domain(cls, v: str) -> str:
        if not DOMAIN_RE.fullmatch(v):
            raise ValueError(f"'{v}' is not a domain name; use the tenant's domain, e.g. contoso.onmicrosoft.com")
        return v.lower()

    @field_validator("authority")
    @classmethod
    def _authority(cls, v: str | None) -> str | None:
        return None if v is None else _https_url(v, "authority", need_path=True)

    @field_validator("graph_url")
    @classmethod
    def _graph(cls, v: str) -> str:
        return _https_url(v, "graph_url", need_path=False)

    @field_validator("ca_file")
    @classmethod
    def _ca(cls, v: Path | None, info: ValidationInfo) -> Path | None:
        return _resolve_path(v, info)

    @model_validator(mode="after")
    def _default_authority(self) -> TenantConfig:
        if self.authority is None:
            object.__setattr__(self, "authority", f"{DEFAULT_LOGIN_HOST}/{self.tenant_id}")
        return self

    def _fail(self, key: str, message: str) -> ConfigError:
        """A ConfigError at tenants.<name>.credential.<key> in the file this tenant came from."""
        return ConfigError(
            self._source_file or "<config>",
            [ConfigIssue(("tenants", self.name, "credential", key), f"tenant '{self.name}': {message}")],
        )

    def resolve_secret(self) -> SecretStr:
        """Read the client secret now (env var or file); errors name the tenant and the source, never the value."""
        cred = self.credential
        if cred.sandbox_secret is not None:
            return cred.sandbox_secret
        if cred.env:
            value = os.environ.get(cred.env)
            if not value:
                raise self._fail(
                    "env",
                    f"environment variable {cred.env} is not set or empty; export {cred.env} with the "
                    f"client secret of app {self.client_id}.",
                )
            return SecretStr(value)
        if cred.file:
            try:
                value = cred.file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise self._fail(
                    "file",
                    f"cannot read secret file {cred.file} ({type(exc).__name__}); create it or fix credential.file.",
                ) from None
            if not value:
                raise self._fail(
                    "file", f"secret file {cred.file} is empty; write the client secret of app {self.client_id} into it."
                )
            return SecretStr(value)
        raise self._fail(
            "certificate",
            f"authenticates with certificate {cred.certificate}, not a secret; call resolve_certificate() instead.",
        )

    def connection(self) -> Any:
        """The graph client's TenantConnection for this tenant, with the credential resolved now."""
        from xts_pipeline.graph.connection import TenantConnection

        cert = self.resolve_certificate()
        return TenantConnection(
            name=self.name,
            tenant_id=self.tenant_id,
            client_id=self.client_id,
            client_secret=None if cert else self.resolve_secret(),
            authority=self.authority,
            graph_url=self.graph_url,
            certificate_path=str(cert.certificate_path) if cert else None,
            certificate_thumbprint=cert.thumbprint if cert else None,
            ca_file=str(self.ca_file) if self.ca_file else None,
        )

    def resolve_certificate(self) -> CertificateCredential | None:
        """The certificate credential (thumbprint read from its env var if so configured), or None."""
        cred = self.credential
        if cred.certificate is None:
            return None
        thumb = cred.thumbprint
        if cred.thumbprint_env:
            thumb = os.environ.get(cred.thumbprint_env, "").replace(":", "").strip()
            if not THUMBPRINT_RE.fullmatch(thumb):
                raise self._fail(
                    "thumbprint_env",
                    f"environment variable {cred.thumbprint_env} must hold the certificate thumbprint "
                    "(40 or 64 hex characters); export it.",
                )
        if not cred.certificate.is_file():
            raise self._fail(
                "certificate", f"certificate file {cred.certificate} does not exist; fix credential.certificate."
            )
        return CertificateCredential(certificate_path=cred.certificate, thumbprint=str(thumb))


class ScopingClause(StrictModel):
    """One clause of an Entra scoping filter; operator semantics live in xts_pipeline.scoping."""

    attribute: str = Field(description="source user attribute, e.g. department")
    operator: str = Field(description="Entra operator, e.g. EQUALS, REGEX MATCH, IS TRUE")
    value: Any = Field(None, description="comparison value (not used by IS TRUE/IS FALSE/IS NULL/IS NOT NULL)")


class ScopingFilter(StrictModel):
    """Clauses inside one filter are ANDed; separate filters are ORed."""

    title: str | None = Field(None, description="a label for people; Entra shows it as the filter's name")
    clauses: list[ScopingClause] = Field(min_length=1, description="list of {attribute, operator, value}")


class ScopeConfig(StrictModel):
    """Who is in scope: everyone, or direct members of assigned groups, then scoping filters."""

    all_members: bool = Field(False, description="true: every internal member of the source is in scope")
    groups: list[str] = Field(default_factory=list, description="assigned groups (display names or object ids)")
    filters: list[ScopingFilter] = Field(default_factory=list, description="Entra scoping filters")

    @model_validator(mode="after")
    def _not_both(self) -> ScopeConfig:
        if self.all_members and self.groups:
            raise ValueError(
                "`all_members: true` and `groups:` exclude each other (Entra: 'sync all users' vs "
                "'sync only assigned users and groups'); remove one, or add `all_members: false` next to `groups` "
                "where sync_defaults sets all_members: true"
            )
        return self


class DeprovisionConfig(StrictModel):
    """What happens to the target user when the source user leaves scope."""

    action: Literal["delete", "disable", "none"] = Field(
        "delete", description="delete (soft delete, Entra's default), disable, or none"
    )


class TargetObjectActions(StrictModel):
    """Entra's 'Target Object Actions': which kinds of writes the pair may make."""

    create: bool = True
    update: bool = True
    delete: bool = True


class UserTypeSetting(StrictModel):
    """`user_type: {value: Member, apply: Always}`: also convert existing users (a visible update).

    Entra: "If the B2B user already exists in the target tenant then Member (userType) will not changed
    to Member, unless the Apply this mapping setting is set to Always" (cross-tenant-synchronization-
    configure.md). The plain form `user_type: Member` is "Only during object creation".
    """

    value: Literal["Member", "Guest"] = Field("Member", description="Member (external member) or Guest")
    apply: Literal["OnCreateOnly", "Always"] = Field("OnCreateOnly", description="Always also converts existing users")


class SyncSettings(StrictModel):
    """Settings of one sync configuration; also the shape of every partial fragment that sets them."""

    enabled: bool = Field(True, description="false keeps the pair configured but never runs it")
    scope: ScopeConfig = Field(default_factory=ScopeConfig)
    mappings: list[dict[str, Any]] = Field(
        default_factory=list, description="attribute mappings merged over Entra's defaults, keyed by target"
    )
    user_type: str | UserTypeSetting = Field(
        "Member", description="userType of created users (Member or Guest); {value, apply: Always} also converts existing users")
    show_in_address_list: bool = True

    @field_validator("user_type", mode="before")
    @classmethod
    def _user_type(cls, v: Any) -> Any:
        if isinstance(v, str) and v not in ("Member", "Guest"):
            raise ValueError(f"must be 'Member' or 'Guest' (got '{v}'), or {{value: Member, apply: Always}} "
                             "to also convert existing users")
        if not isinstance(v, str | dict | UserTypeSetting):
            raise ValueError("must be 'Member' or 'Guest', or {value: Member, apply: Always}")
        return v

    drift: Literal["report", "repair"] = Field(
        "report", description="a target value that differs from what this pair last wrote: report it (Entra's behaviour: "
                              "target edits persist), or repair it with a planned, guardrail-checked write")
    deprovision: DeprovisionConfig = Field(default_factory=DeprovisionConfig)
    target_object_actions: TargetObjectActions = Field(default_factory=TargetObjectActions)


SETTINGS_KEYS = frozenset(SyncSettings.model_fields)


class HubSpec(StrictModel):
    """A hub and its spokes."""

    hub: str
    spokes: list[str] = Field(min_length=1)


class PairSpec(StrictModel):
    """One source->target pair."""

    source: str
    target: str


BLOCK_KINDS = ("mesh", "hub_outbound", "hub_inbound", "pair")


class TopologyBlock(SyncSettings):
    """One entry of `topology:`: exactly one kind key plus optional sync settings for its pairs."""

    mesh: list[str] | None = Field(None, min_length=2, description="a list of at least two tenant names; each syncs to every other")
    hub_outbound: HubSpec | None = Field(None, description="the hub pushes to each spoke")
    hub_inbound: HubSpec | None = Field(None, description="each spoke pushes to the hub")
    pair: PairSpec | None = Field(None, description="one ad hoc source->target pair")

    @model_validator(mode="after")
    def _one_kind(self) -> TopologyBlock:
        kinds = [k for k in BLOCK_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                f"a topology block needs exactly one of {', '.join(BLOCK_KINDS)} (found {', '.join(kinds) or 'none'})"
            )
        return self

    @property
    def kind(self) -> str:
        return next(k for k in BLOCK_KINDS if getattr(self, k) is not None)

    def settings_fragment(self) -> dict[str, Any]:
        """The sync settings this block sets explicitly."""
        return {k: v for k, v in self.model_dump(exclude_unset=True).items() if k in SETTINGS_KEYS}


class SyncOverride(SyncSettings):
    """A `sync:` entry: settings for one existing pair, deep-merged over everything else."""

    source: str
    target: str

    def settings_fragment(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump(exclude_unset=True).items() if k in SETTINGS_KEYS}


class ScheduleConfig(StrictModel):
    """When cycles run. Entra fixes 40 minutes; here it is a default."""

    interval_minutes: int = Field(40, ge=1, le=1440)
    cron: str | None = Field(None, description="5-field cron expression; overrides interval_minutes")

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str | None) -> str | None:
        if v is not None:
            fields = v.split()
            if len(fields) != 5 or not all(CRON_FIELD_RE.fullmatch(f) for f in fields):
                raise ValueError("cron must have 5 fields: minute hour day-of-month month day-of-week, e.g. '*/40 * * * *'")
        return v


class StagingConfig(StrictModel):
    """Tolerance of the staging validation before a cycle stops."""

    max_reject_fraction: float = Field(0.05, ge=0.0, le=1.0)


class StorageConfig(StrictModel):
    """Where the DuckDB staging file lives."""

    duckdb_path: Path | None = Field(None, description="relative paths resolve against the config file's folder")

    @field_validator("duckdb_path")
    @classmethod
    def _path(cls, v: Path | None, info: ValidationInfo) -> Path | None:
        return _resolve_path(v, info)
