"""Replication lag (fault mode lag_ms): a user just written stays invisible to reads for a while.

user-list.md: "This request might have replication delays for users that were recently created, updated,
or deleted". With lag off nothing is recorded, so every check is one empty-dict test.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .faults import FaultInjector
    from .store import Tenant


class ReplicationLag:
    """Which users are not visible yet, by (tenant id, user id); reset whenever the faults change."""

    def __init__(self, injector: FaultInjector | None) -> None:
        self.injector = injector
        self._lag: dict[tuple[str, str], tuple[float, bool]] = {}  # (tenant, user) -> (visible at, created)

    def note_write(self, tenant: Tenant, user_id: str, created: bool = False) -> None:
        """A user was just created or changed: with lag_ms it stays invisible to reads for a while."""
        if self.injector is None:
            return
        lag = self.injector.lag_for(tenant.name)
        if lag:
            now = time.monotonic()
            if len(self._lag) > 50_000:
                self._lag = {k: v for k, v in self._lag.items() if v[0] > now}
            old = self._lag.get((tenant.tenant_id, user_id))
            self._lag[(tenant.tenant_id, user_id)] = (now + lag, created or bool(old and old[1] and old[0] > now))

    def lagging(self, tenant: Tenant, user_id: str, writes: bool = False) -> bool:
        """Whether a read (or, with `writes`, a write: only for a just-created user) must not see it yet."""
        if not self._lag:
            return False
        hit = self._lag.get((tenant.tenant_id, user_id))
        if hit is None:
            return False
        if hit[0] <= time.monotonic():
            self._lag.pop((tenant.tenant_id, user_id), None)
            return False
        return hit[1] or not writes

    def filter(self, tenant: Tenant) -> Callable[[str], bool] | None:
        """A `hide(id)` for listings, or None when no user is lagging (the fast path stays fast)."""
        return (lambda uid: self.lagging(tenant, uid)) if self._lag else None
