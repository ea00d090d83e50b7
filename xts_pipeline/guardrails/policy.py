"""The target's inbound policy: what a target tenant accepts from its sources.

Entra gives the target only an on/off switch and an accidental-deletion threshold. This model is
the target's real say. Every default is the safe one: nothing is allowed unless listed, volumes are
capped, look-alikes of protected people and privilege-by-attribute are blocked per user.
config.py embeds it under `inbound_policies: {target: ...}`.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Action = Literal["block_user", "block_cycle", "warn"]
PairAction = Literal["block_cycle", "warn"]

IDENTITY_FIELDS = ("displayName", "mail", "userPrincipalName", "mailNickname")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VolumePolicy(_Strict):
    """Caps on what one cycle (and one source overall) may add or change in the target."""

    max_creates_per_cycle: int = Field(500, ge=0)
    # % of the target tenant's current user count; None disables the relative cap.
    max_creates_pct_of_target: float | None = Field(10.0, ge=0)
    # The % cap never drops below this, so a near-empty target can still take a first batch.
    pct_floor: int = Field(50, ge=0)
    # All B2B users linked to one source after this cycle (existing + creates); None = no cap.
    max_b2b_users_per_source: int | None = Field(10_000, ge=0)
    max_updates_per_cycle: int = Field(5_000, ge=0)


class DeletionPolicy(_Strict):
    """Entra's accidental-deletion prevention: disables and deletes both count."""

    threshold: int = Field(500, ge=0)
    # Optional % of the users this source already has in the target; the lower limit wins.
    threshold_pct: float | None = Field(None, ge=0, le=100)


class ProtectedEntry(_Strict):
    """A protected identity: a display name, UPN or mail, with a label shown in messages."""

    value: str = Field(min_length=1)
    label: str | None = None


class ImpersonationPolicy(_Strict):
    """Who must not be mimicked, and which incoming fields are compared."""

    protected: list[str | ProtectedEntry] = Field(default_factory=list)
    include_role_assignable_group_members: bool = True
    include_directory_role_holders: bool = True
    # Skeletons shorter than this are ignored: 'Al' resembles too many names to mean anything.
    min_skeleton_length: int = Field(3, ge=1)
    # Incoming users never flagged, by source object id, UPN or mail (the same person in both tenants).
    exempt: list[str] = Field(default_factory=list)

    def entries(self) -> list[ProtectedEntry]:
        return [p if isinstance(p, ProtectedEntry) else ProtectedEntry(value=p) for p in self.protected]


class PrivilegePolicy(_Strict):
    """Groups whose membership the source must never grant through attribute values."""

    privileged_groups: list[str] = Field(default_factory=list)  # display names or object ids
    treat_role_assignable_as_privileged: bool = True


class AttributeRule(_Strict):
    """What one attribute may hold when written into the target."""

    allow: list[str] | None = None  # case-insensitive; None = any value
    deny_patterns: list[str] = Field(default_factory=list)  # Python `re`, searched anywhere
    max_length: int | None = Field(None, ge=1)

    @field_validator("deny_patterns")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        for p in patterns:
            try:
                re.compile(p)
            except re.error as exc:
                raise ValueError(f"deny pattern {p!r} is not a valid Python regex: {exc}; fix the pattern") from exc
        return patterns


class OnViolation(_Strict):
    """What each guardrail does when it fires. Per-user checks default to dropping just the user."""

    impersonation: Action = "block_user"
    privilege: Action = "block_user"
    attribute_policy: Action = "block_user"
    volume: PairAction = "block_cycle"
    deletions: PairAction = "block_cycle"


class QuarantinePolicy(_Strict):
    """Entra's quarantine rule and back-off, with thresholds scalable for small tenants and tests."""

    min_failures: int = Field(5_000, ge=1)  # Entra: evaluated only after at least 5,000 failures
    failure_rate: float = Field(0.40, gt=0, le=1)  # ... then more than 40 % of events failed
    max_failures: int = Field(40_000, ge=1)  # ... or more than 40,000 failures
    backoff_hours: list[float] = Field(default_factory=lambda: [6.0, 12.0, 24.0])  # then the last, repeated
    disable_after_days: float = Field(28.0, gt=0)

    @field_validator("backoff_hours")
    @classmethod
    def _backoff_nonempty(cls, hours: list[float]) -> list[float]:
        if not hours or any(h <= 0 for h in hours):
            raise ValueError("backoff_hours needs at least one positive number of hours, e.g. [6, 12, 24]")
        return hours

    def delay(self, attempts: int) -> timedelta:
        """Back-off before retry number `attempts + 1` (6 h, 12 h, 24 h, then 24 h)."""
        return timedelta(hours=self.backoff_hours[min(attempts, len(self.backoff_hours) - 1)])


class InboundPolicy(_Strict):
    """Inbound policy of one target tenant. Every default is safe."""

    # Source tenant names (config names) that may write. Empty = nobody: consent is explicit.
    allowed_sources: list[str] = Field(default_factory=list)
    volume: VolumePolicy = Field(default_factory=VolumePolicy)
    deletions: DeletionPolicy = Field(default_factory=DeletionPolicy)
    impersonation: ImpersonationPolicy = Field(default_factory=ImpersonationPolicy)
    privilege: PrivilegePolicy = Field(default_factory=PrivilegePolicy)
    attribute_policy: dict[str, AttributeRule] = Field(default_factory=dict)
    # Domains that incoming `mail` may use ('*.contoso.com' also admits subdomains); None = any.
    allowed_mail_domains: list[str] | None = None
    on_violation: OnViolation = Field(default_factory=OnViolation)
    quarantine: QuarantinePolicy = Field(default_factory=QuarantinePolicy)

    @field_validator("allowed_mail_domains")
    @classmethod
    def _domains_lower(cls, domains: list[str] | None) -> list[str] | None:
        return None if domains is None else [d.strip().lower() for d in domains]

    @model_validator(mode="after")
    def _sources_unique(self) -> InboundPolicy:
        dupes = sorted({s for s in self.allowed_sources if self.allowed_sources.count(s) > 1})
        if dupes:
            raise ValueError(f"allowed_sources lists {dupes} more than once; list each source tenant once")
        return self
