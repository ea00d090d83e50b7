"""Throttling like Microsoft Graph's identity and access service, with the documented numbers.

Source: learn.microsoft.com/graph/throttling-limits, "Identity and access service limits".
Every limit is a sliding window over the sandbox clock, so a client that honours Retry-After at
100 % of a budget gets the documented amount accepted per window, and no more. Refused requests are
not charged. The module is pure (no I/O) and thread-safe; `charge` is called on every request.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qsl

__all__ = [
    "Decision",
    "Throttler",
    "ThrottleError",
    "app_tenant_ru_limit",
    "request_cost",
    "LIMITS",
]

Mode = Literal["documented", "off"]

# (scope, limit kind, quota, window seconds); scope names and limit kinds as in x-ms-throttle-scope.
RU_SMALL, RU_MEDIUM, RU_LARGE = 3_500, 5_000, 8_000
LIMITS = {
    "app_tenant_ru_window_s": 10.0,
    "app_tenant_writes": 3_000,
    "app_tenant_writes_window_s": 150.0,
    "tenant_writes": 18_000,
    "tenant_writes_window_s": 300.0,
    "app_ru": 150_000,
    "app_ru_window_s": 20.0,
    "app_writes": 35_000,
    "app_writes_window_s": 300.0,
}

# Base costs the doc lists; "{id}" matches one path segment. Anything else: GET 1 RU, write 1 RU + 1 write.
_BASE_COSTS: dict[tuple[str, tuple[str, ...]], tuple[int, int]] = {
    ("GET", ("applications",)): (2, 0),
    ("GET", ("applications", "{id}", "extensionProperties")): (2, 0),
    ("GET", ("contracts",)): (3, 0),
    ("POST", ("directoryObjects", "getByIds")): (3, 0),
    ("GET", ("domains", "{id}", "domainNameReferences")): (4, 0),
    ("POST", ("getObjectsById",)): (3, 0),
    ("GET", ("groups", "{id}", "members")): (3, 0),
    ("GET", ("groups", "{id}", "transitiveMembers")): (5, 0),
    ("POST", ("isMemberOf",)): (4, 0),
    ("POST", ("me", "checkMemberGroups")): (4, 0),
    ("POST", ("me", "checkMemberObjects")): (4, 0),
    ("POST", ("me", "getMemberGroups")): (2, 0),
    ("POST", ("me", "getMemberObjects")): (2, 0),
    ("GET", ("me", "licenseDetails")): (2, 0),
    ("GET", ("me", "memberOf")): (2, 0),
    ("GET", ("me", "ownedObjects")): (2, 0),
    ("GET", ("me", "transitiveMemberOf")): (2, 0),
    ("GET", ("oauth2PermissionGrants",)): (2, 0),
    ("GET", ("oauth2PermissionGrants", "{id}")): (2, 0),
    ("GET", ("servicePrincipals", "{id}", "appRoleAssignments")): (2, 0),
    ("GET", ("subscribedSkus",)): (3, 0),
    ("GET", ("users",)): (2, 0),
}
_WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})


class ThrottleError(ValueError):
    """A Throttler was built or called with arguments that make no sense."""


def _segments(path: str) -> tuple[str, ...]:
    """Path segments after the API version, without the query; `users/{id}/x` is folded to `me/x`."""
    path = path.split("?", 1)[0].strip("/")
    parts = [p for p in path.split("/") if p]
    if parts and parts[0].lower() in ("v1.0", "beta"):
        parts = parts[1:]
    if len(parts) >= 3 and parts[0] == "users":
        # The doc: a cost for `me/...` also applies to `users/{id | userPrincipalName}/...`.
        parts = ["me", *parts[2:]]
    return tuple(parts)


def _matches(template: tuple[str, ...], parts: tuple[str, ...]) -> bool:
    if len(template) != len(parts):
        return False
    return all(t == "{id}" or t.lower() == p.lower() for t, p in zip(template, parts, strict=True))


def _query_dict(query: Mapping[str, str] | str | None) -> dict[str, str]:
    if query is None:
        return {}
    if isinstance(query, str):
        items = parse_qsl(query.lstrip("?"), keep_blank_values=True)
    else:
        items = list(query.items())
    # Graph v1.0 accepts system query options with or without the `$`.
    return {k.lower().lstrip("$"): v for k, v in items}


def request_cost(method: str, path: str, query: Mapping[str, str] | str | None = None) -> tuple[int, int]:
    """(resource units, writes) a request costs, per the documented table and modifiers.

    `$batch` envelopes cost (0, 0): each sub-request is charged on its own, as Microsoft does.
    """
    method = method.upper()
    parts = _segments(path)
    if parts == ("$batch",):
        return 0, 0
    base: tuple[int, int] | None = None
    for (m, template), cost in _BASE_COSTS.items():
        if m == method and _matches(template, parts):
            base = cost
            break
    if base is None:
        base = (1, 1) if method in _WRITE_METHODS else (1, 0)
    ru, writes = base
    q = _query_dict(query)
    if "select" in q:
        ru -= 1
    if "expand" in q:
        ru += 1
    top = q.get("top")
    if top is not None:
        try:
            if int(top) < 20:
                ru -= 1
        except ValueError:
            pass  # a malformed $top is the app's 400, not a cost question
    return max(ru, 1), writes


def app_tenant_ru_limit(tenant_size: int) -> int:
    """RU per 10 s for one app in one tenant: S (<50 users), M (50-500), L (>500)."""
    if tenant_size < 50:
        return RU_SMALL
    if tenant_size <= 500:
        return RU_MEDIUM
    return RU_LARGE


@dataclass(frozen=True, slots=True)
class Decision:
    """The throttler's answer for one request; `headers` go on the response as they are."""

    allowed: bool
    retry_after_s: int | None = None  # real seconds, as in the Retry-After header; None when allowed
    headers: dict[str, str] = field(default_factory=dict)
    scope: str | None = None  # x-ms-throttle-scope of the limit that refused, for logs
    information: str | None = None


class _Window:
    """Sliding-window counter over the sandbox clock.

    Charges are kept in slots of `window / SLOTS` seconds. A charge is stamped at the *end* of its
    slot, so it leaves the window a little late, never early: no interval of `window` seconds ever
    holds more than `limit`.
    """

    SLOTS = 300
    __slots__ = ("limit", "window", "res", "entries", "used")

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self.res = window / self.SLOTS
        self.entries: deque[list[float]] = deque()  # [slot_end_time, amount]
        self.used = 0.0

    def expire(self, now: float) -> None:
        entries = self.entries
        cutoff = now - self.window
        while entries and entries[0][0] <= cutoff:
            self.used -= entries.popleft()[1]
        if not entries:
            self.used = 0.0  # no float drift across long runs

    def fits(self, amount: float) -> bool:
        return self.used + amount <= self.limit

    def add(self, now: float, amount: float) -> None:
        stamp = (math.floor(now / self.res) + 1) * self.res
        entries = self.entries
        if entries and entries[-1][0] >= stamp:
            entries[-1][1] += amount
        else:
            entries.append([stamp, amount])
        self.used += amount

    def wait_for(self, now: float, amount: float) -> float:
        """Sandbox seconds until `amount` more would fit."""
        need = self.used + amount - self.limit
        if need <= 0:
            return 0.0
        freed = 0.0
        for stamp, value in self.entries:
            freed += value
            if freed >= need:
                return max(stamp + self.window - now, 0.0)
        return self.window  # more than the whole limit: it never fits; say "a full window"


@dataclass(frozen=True, slots=True)
class _Check:
    window: _Window
    amount: float
    scope: str
    information: str


class Throttler:
    """Charges requests against every documented identity-service limit at once.

    `clock` is any zero-argument callable returning sandbox seconds, or an object with `.now()`
    (SandboxClock). `time_scale` is how much faster the sandbox clock runs than real time (default:
    the clock's own `time_scale`, else 1); Retry-After is given in real seconds so that a real
    client waits the right amount.
    """

    def __init__(
        self, clock: Callable[[], float] | object, mode: Mode = "documented", time_scale: float | None = None
    ) -> None:
        if mode not in ("documented", "off"):
            raise ThrottleError(f"throttle mode {mode!r} is not known; use 'documented' or 'off'")
        now = getattr(clock, "now", clock)  # a SandboxClock, or any zero-argument callable
        if not callable(now):
            raise ThrottleError(f"clock {clock!r} is neither callable nor has a now() method")
        if time_scale is None:
            time_scale = float(getattr(clock, "time_scale", 1.0))
        if not time_scale > 0:
            raise ThrottleError(f"time_scale must be > 0 (got {time_scale!r}); 1.0 is real time")
        self.clock: Callable[[], float] = now
        self.mode: Mode = mode
        self.time_scale = float(time_scale)
        self._lock = threading.Lock()
        self._windows: dict[tuple, _Window] = {}

    def _window(self, key: tuple, limit: int, seconds: float) -> _Window:
        w = self._windows.get(key)
        if w is None or w.limit != limit:
            old = w
            w = _Window(limit, seconds)
            if old is not None:  # the tenant changed size class: keep what it already used
                w.entries, w.used = old.entries, old.used
            self._windows[key] = w
        return w

    def charge(
        self, tenant_id: str, app_id: str, tenant_size: int, cost_ru: int, writes: int
    ) -> Decision:
        """Charge one request; refuse it (and charge nothing) if any limit would be exceeded."""
        ru_header = {"x-ms-resource-unit": str(int(cost_ru))}
        if self.mode == "off":
            return Decision(True, None, ru_header)
        now = float(self.clock())
        with self._lock:
            checks = [
                _Check(
                    self._window(("ta_ru", tenant_id, app_id), app_tenant_ru_limit(tenant_size),
                                 LIMITS["app_tenant_ru_window_s"]),
                    cost_ru, f"Tenant_Application/ReadWrite/{app_id}/{tenant_id}", "ResourceUnitLimitExceeded",
                ),
                _Check(
                    self._window(("a_ru", app_id), LIMITS["app_ru"], LIMITS["app_ru_window_s"]),
                    cost_ru, f"Application/ReadWrite/{app_id}/{tenant_id}", "ResourceUnitLimitExceeded",
                ),
            ]
            if writes:
                checks += [
                    _Check(
                        self._window(("ta_w", tenant_id, app_id), LIMITS["app_tenant_writes"],
                                     LIMITS["app_tenant_writes_window_s"]),
                        writes, f"Tenant_Application/Write/{app_id}/{tenant_id}", "WriteLimitExceeded",
                    ),
                    _Check(
                        self._window(("t_w", tenant_id), LIMITS["tenant_writes"], LIMITS["tenant_writes_window_s"]),
                        writes, f"Tenant/Write/{app_id}/{tenant_id}", "WriteLimitExceeded",
                    ),
                    _Check(
                        self._window(("a_w", app_id), LIMITS["app_writes"], LIMITS["app_writes_window_s"]),
                        writes, f"Application/Write/{app_id}/{tenant_id}", "WriteLimitExceeded",
                    ),
                ]
            for c in checks:
                c.window.expire(now)
            refused = [c for c in checks if not c.window.fits(c.amount)]
            if refused:
                worst = max(refused, key=lambda c: c.window.wait_for(now, c.amount))
                wait = worst.window.wait_for(now, worst.amount)
                pct = max((c.window.used + c.amount) / c.window.limit for c in checks)
            else:
                for c in checks:
                    c.window.add(now, c.amount)
                pct = max(c.window.used / c.window.limit for c in checks)
        headers = dict(ru_header)
        if pct > 0.8:
            headers["x-ms-throttle-limit-percentage"] = f"{min(pct, 1.8):.2f}"
        if not refused:
            return Decision(True, None, headers)
        retry = max(1, math.ceil(wait / self.time_scale - 1e-9))
        headers["Retry-After"] = str(retry)
        headers["x-ms-throttle-scope"] = worst.scope
        headers["x-ms-throttle-information"] = worst.information
        return Decision(False, retry, headers, worst.scope, worst.information)

    def reset(self) -> None:
        """Forget all usage (admin route, tests)."""
        with self._lock:
            self._windows.clear()
