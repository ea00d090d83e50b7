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
    # Over time and across pairs: creates (incl. restores) into this target from EVERY source within a
    # rolling window, counted from the provisioning log's successful creates plus what the plan adds
    # (creates of cycles an admin approved with `xts approve` are not counted again). The lower of the
    # absolute cap and the % of the target's internal members (never below window_floor) applies.
    window_hours: float = Field(24.0, gt=0)
    max_creates_per_window: int | None = Field(2_000, ge=0)
    max_creates_window_pct_of_members: float | None = Field(50.0, ge=0)
    window_floor: int = Field(100, ge=0)
    # All external (B2B) users of the target after this plan, from every source, as % of its internal
    # members (never below b2b_floor); checked when the plan adds users. None disables it.
    max_b2b_pct_of_members: float | None = Field(200.0, ge=0)
    b2b_floor: int = Field(1_000, ge=0)


class DeletionPolicy(_Strict):
    """Entra's accidental-deletion prevention: disables and deletes both count."""

    threshold: int = Field(500, ge=0)
    # Optional % of the users this source already has in the target; the lower limit wins.
    threshold_pct: float | None = Field(None, ge=0, le=100)


class ProtectedEntry(_Strict):
    """A protected identity: a display name, UPN or mail, with a label shown in messages."""

    value: str = Field(min_length=1)
    label: str | None = None


class ExemptEntry(_Strict):
    """One incoming user the target vouches for (the same person in both tenants), tied to one source."""

    source: str = Field(min_length=1)  # the source tenant's config name
    object_id: str | None = None  # the user's object id in that source
    address: str | None = None  # mail or UPN; honoured only if its domain is verified by that source

    @model_validator(mode="before")
    @classmethod
    def _no_bare_strings(cls, value: object) -> object:
        if isinstance(value, str):
            raise ValueError(f"impersonation.exempt entry {value!r} names no source: write it as "
                             f"{{source: <source tenant>, object_id: <id>}} or {{source: <source tenant>, "
                             f"address: <mail or UPN in a verified domain of that source>}}")
        return value

    @model_validator(mode="after")
    def _one_key(self) -> ExemptEntry:
        if (self.object_id is None) == (self.address is None):
            raise ValueError(f"impersonation.exempt entry for source {self.source!r}: give exactly one of "
                             f"object_id or address")
        return self


class ImpersonationPolicy(_Strict):
    """Who must not be mimicked, and which incoming fields are compared."""

    protected: list[str | ProtectedEntry] = Field(default_factory=list)
    include_role_assignable_group_members: bool = True
    include_directory_role_holders: bool = True
    # Skeletons shorter than this are ignored: 'Al' resembles too many names to mean anything.
    min_skeleton_length: int = Field(3, ge=1)
    # Word matching: a protected name of at least `min_words` words (each of at least `min_word_length`
    # letters) matches any incoming value holding all its words, in any order, extras allowed. A
    # single-word protected value only matches a whole value (a first name alone protects nobody).
    min_words: int = Field(2, ge=2)
    min_word_length: int = Field(2, ge=1)
    # Incoming users never flagged: each names its source and either the source object id or a mail/UPN
    # whose domain is a verified domain of that source tenant. A row from another pair never matches.
    exempt: list[ExemptEntry] = Field(default_factory=list)

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
