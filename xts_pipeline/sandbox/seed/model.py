"""What a seed hands the sandbox store: one TenantSeed per tenant and the partner policies between them.

Kept apart from the generator and the seed-file reader, which both build these, so the store and
server read the shapes without either (docs/DESIGN.md, "Seed contract").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..permissions import DEMO_APP_PERMISSIONS

# Default grants of a seeded app: least privilege for a tenant that is both a sync source and target.
ALL_PERMISSIONS = list(DEMO_APP_PERMISSIONS)


class SeedError(ValueError):
    """A seed request or seed file is invalid; the message names the tenant or file and what to fix."""


@dataclass(frozen=True, kw_only=True)
class PartnerPolicy:
    """Cross-tenant access partner settings owned by `tenant_name`, about `partner_tenant_name`."""

    tenant_name: str
    partner_tenant_name: str
    is_sync_allowed: bool = True  # identitySynchronization.userSyncInbound.isSyncAllowed
    inbound_auto_consent: bool = True  # automaticUserConsentSettings.inboundAllowed
    outbound_auto_consent: bool = True  # automaticUserConsentSettings.outboundAllowed


@dataclass(frozen=True, kw_only=True)
class Fixture:
    """A deliberate user in a seeded tenant (an attack case for the demo): an enabled internal member with
    a mail. Fixtures take the indices just before the `guests_from` guests, so nobody else shifts."""

    given: str
    surname: str
    department: str  # one of the seed's departments; the title comes from the org tree unless job_title
    job_title: str | None = None
    note: str = ""  # why it is there; documentation only

    @property
    def display_name(self) -> str:
        return f"{self.given} {self.surname}"


@dataclass(kw_only=True)
class TenantSeed:
    """One generated tenant; `users` is a lazy, re-iterable sequence of Graph-shaped dicts."""

    name: str
    tenant_id: str
    domain: str
    display_name: str
    client_id: str
    client_secret: str = field(repr=False)
    app_object_id: str
    permissions: list[str]
    users: Sequence[dict[str, Any]] = field(repr=False)
    groups: list[dict[str, Any]] = field(repr=False)
    members: list[tuple[str, str]] = field(repr=False)
    # Activated directory roles (Graph-shaped directoryRole dicts) and (role id, user id) assignments.
    directory_roles: list[dict[str, Any]] = field(default_factory=list, repr=False)
    role_members: list[tuple[str, str]] = field(default_factory=list, repr=False)
    user_count: int
    seed: int = 0


@dataclass(kw_only=True)
class DemoSeed:
    """Several tenants plus the partner policies between them."""

    tenants: list[TenantSeed]
    partner_policies: list[PartnerPolicy]

    def tenant(self, name: str) -> TenantSeed:
        for t in self.tenants:
            if t.name == name:
                return t
        raise KeyError(f"seed has no tenant named {name!r}; it has {', '.join(t.name for t in self.tenants)}")
