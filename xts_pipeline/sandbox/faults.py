"""Seeded, reproducible fault injection for the sandbox.

Spec grammar (rules separated by `;`, keys by `,`)::

    [tenant=NAME,][kind=read|write,]429=P,5xx=P,500=P,502=P,503=P,504=P,reset=P,latency_ms=MS,burst429=N,
    retry_after=S

A rule without `tenant` applies to every tenant, one without `kind` to reads and writes. Rules are
layered: for a (tenant, kind) the matching rules are applied from the least to the most specific
(then in spec order), and each rule overrides only the keys it sets. `5xx=P` picks 500/502/503/504
evenly; `burst429=N` makes a chosen 429 the first of N consecutive 429s for that tenant and kind.
`retry_after=S` (whole seconds >= 1, default 1, Graph's format) is the `Retry-After` that injected 429s
and 503s carry. `lag_ms=MS` models replication lag (user-list.md: "This request might have replication
delays for users that were recently created, updated, or deleted"): a user just created or changed stays
invisible to list, filter and GET for between MS/2 and MS milliseconds (seeded); a just-created one also
answers 404 to PATCH, DELETE and manager writes meanwhile.

Each (tenant, kind) has its own random stream derived from the seed, so the same seed and the same
sequence of calls for one tenant and kind give the same faults, whatever other tenants do meanwhile.
"""

from __future__ import annotations

import hashlib
import random
import re
import threading
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Fault", "FaultInjector", "FaultRule", "FaultSpec", "FaultSpecError"]

Kind = Literal["read", "write"]
_STATUS_KEYS = ("500", "502", "503", "504")
_PROB_KEYS = ("429", "5xx", *_STATUS_KEYS, "reset")
_ALL_KEYS = ("tenant", "kind", *_PROB_KEYS, "latency_ms", "burst429", "retry_after", "lag_ms")
_INT_KEYS = ("burst429", "retry_after")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
_GRAMMAR = ("[tenant=NAME,][kind=read|write,]429=P,5xx=P,reset=P,latency_ms=MS,burst429=N,retry_after=S,"
            "lag_ms=MS")


class FaultSpecError(ValueError):
    """A fault spec does not follow the grammar; the message names the bad rule and token."""


@dataclass(frozen=True, slots=True)
class Fault:
    """What to do to one request: fail it (`kind`) and/or delay it by `latency_s` real seconds."""

    kind: str | None  # "429", "500", "502", "503", "504", "reset" or None (latency only)
    latency_s: float = 0.0
    retry_after_s: int = 1  # the Retry-After header of an injected 429/503 (whole seconds, >= 1)

    @property
    def status(self) -> int | None:
        """HTTP status to answer with, or None for a reset / latency-only fault."""
        return int(self.kind) if self.kind is not None and self.kind.isdigit() else None


@dataclass(frozen=True, slots=True)
class FaultRule:
    """One `;`-separated rule; None means "not set by this rule"."""

    tenant: str | None = None
    kind: Kind | None = None
    values: dict[str, float] = field(default_factory=dict)  # _PROB_KEYS, latency_ms, burst429, retry_after

    @property
    def specificity(self) -> int:
        return (2 if self.tenant is not None else 0) + (1 if self.kind is not None else 0)


@dataclass(frozen=True, slots=True)
class _Effective:
    """The merged settings for one (tenant, kind)."""

    p429: float = 0.0
    p_status: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # 500, 502, 503, 504
    p_reset: float = 0.0
    latency_s: float = 0.0
    burst429: int = 1
    retry_after_s: int = 1
    lag_s: float = 0.0  # replication lag: how long a just-written user stays invisible to reads

    @property
    def quiet(self) -> bool:
        return not (self.p429 or any(self.p_status) or self.p_reset or self.latency_s)


def _parse_rule(text: str, index: int, spec: str) -> FaultRule:
    where = f"fault spec {spec!r}, rule {index + 1} ({text.strip()!r})"
    tenant: str | None = None
    kind: Kind | None = None
    values: dict[str, float] = {}
    seen: set[str] = set()
    for raw in text.split(","):
        token = raw.strip()
        if not token:
            raise FaultSpecError(f"{where}: empty entry (stray ','); the grammar is {_GRAMMAR}")
        key, sep, value = (part.strip() for part in token.partition("="))
        if not sep or not value:
            raise FaultSpecError(f"{where}: token {token!r} is not KEY=VALUE; the grammar is {_GRAMMAR}")
        if key not in _ALL_KEYS:
            raise FaultSpecError(
                f"{where}: unknown key {key!r} in {token!r}; allowed keys are {', '.join(_ALL_KEYS)}"
            )
        if key in seen:
            raise FaultSpecError(f"{where}: key {key!r} appears twice; give each key once per rule")
        seen.add(key)
        if key == "tenant":
            if not _NAME_RE.match(value):
                raise FaultSpecError(f"{where}: tenant name {value!r} in {token!r} is not a valid tenant name")
            tenant = value
        elif key == "kind":
            if value not in ("read", "write"):
                raise FaultSpecError(f"{where}: kind {value!r} in {token!r} must be 'read' or 'write'")
            kind = value  # type: ignore[assignment]
        elif key in _INT_KEYS:
            if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= 86_400:
                raise FaultSpecError(f"{where}: {key} in {token!r} must be a whole number from 1 to 86400")
            values[key] = int(value)
        else:
            try:
                number = float(value)
            except ValueError:
                raise FaultSpecError(f"{where}: value of {key!r} in {token!r} is not a number") from None
            if number != number or number in (float("inf"), float("-inf")):
                raise FaultSpecError(f"{where}: value of {key!r} in {token!r} must be a finite number")
            if key in ("latency_ms", "lag_ms"):
                if not 0 <= number <= 600_000:
                    raise FaultSpecError(f"{where}: {key} in {token!r} must be between 0 and 600000")
            elif not 0.0 <= number <= 1.0:
                raise FaultSpecError(f"{where}: probability {key!r} in {token!r} must be between 0 and 1")
            values[key] = number
    total = sum(values.get(k, 0.0) for k in _PROB_KEYS)
    if total > 1.0 + 1e-9:
        raise FaultSpecError(f"{where}: the probabilities add up to {total:g}, more than 1; lower them")
    return FaultRule(tenant, kind, values)


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """A parsed fault spec; `FaultSpec.parse("")` is the spec with no faults."""

    rules: tuple[FaultRule, ...] = ()
    text: str = ""

    @classmethod
    def parse(cls, spec: str | None) -> FaultSpec:
        """Parse the `--faults` grammar; raise FaultSpecError naming the bad token."""
        if spec is None:
            return cls()
        if not isinstance(spec, str):
            raise FaultSpecError(f"fault spec must be a string, got {type(spec).__name__}")
        rules = []
        for i, part in enumerate(spec.split(";")):
            if not part.strip():
                continue  # tolerate "a;b;" and blank specs
            rules.append(_parse_rule(part, i, spec))
        parsed = cls(tuple(rules), spec)
        # Layering can push a tenant's total over 1; check every tenant named, plus "any other".
        for tenant in {r.tenant for r in rules if r.tenant} | {"\x00other"}:
            for kind in ("read", "write"):
                parsed.effective(tenant, kind)
        return parsed

    def effective(self, tenant_name: str, kind: str) -> _Effective:
        """Merge the rules that apply to one tenant and kind (least specific first)."""
        matching = [
            (r.specificity, i, r)
            for i, r in enumerate(self.rules)
            if (r.tenant is None or r.tenant == tenant_name) and (r.kind is None or r.kind == kind)
        ]
        merged: dict[str, float] = {}
        for _, _, rule in sorted(matching, key=lambda t: (t[0], t[1])):
            merged.update(rule.values)
        p5xx = merged.get("5xx", 0.0) / 4
        p_status = tuple(merged.get(code, 0.0) + p5xx for code in _STATUS_KEYS)
        eff = _Effective(
            p429=merged.get("429", 0.0),
            p_status=p_status,  # type: ignore[arg-type]
            p_reset=merged.get("reset", 0.0),
            latency_s=merged.get("latency_ms", 0.0) / 1000.0,
            burst429=int(merged.get("burst429", 1)),
            retry_after_s=int(merged.get("retry_after", 1)),
            lag_s=merged.get("lag_ms", 0.0) / 1000.0,
        )
        total = eff.p429 + sum(eff.p_status) + eff.p_reset
        if total > 1.0 + 1e-9:
            raise FaultSpecError(
                f"fault spec {self.text!r}: for tenant {tenant_name.strip(chr(0))!r} and kind {kind!r} the layered "
                f"probabilities add up to {total:g}, more than 1; lower them"
            )
        return eff


class _Stream:
    __slots__ = ("rng", "burst_left", "eff")

    def __init__(self, rng: random.Random, eff: _Effective) -> None:
        self.rng = rng
        self.burst_left = 0
        self.eff = eff


class FaultInjector:
    """Decides, per request, whether to inject a fault. Thread-safe and reproducible per seed."""

    def __init__(self, spec: FaultSpec | str | None, seed: int = 0) -> None:
        self.spec = spec if isinstance(spec, FaultSpec) else FaultSpec.parse(spec)
        self.seed = int(seed)
        self._lock = threading.Lock()
        self._streams: dict[tuple[str, str], _Stream] = {}

    def _stream(self, tenant_name: str, kind: str) -> _Stream:
        key = (tenant_name, kind)
        s = self._streams.get(key)
        if s is None:
            digest = hashlib.sha256(f"{self.seed}\x00{tenant_name}\x00{kind}".encode()).digest()
            s = _Stream(random.Random(int.from_bytes(digest[:16], "big")), self.spec.effective(tenant_name, kind))
            self._streams[key] = s
        return s

    def lag_for(self, tenant_name: str) -> float:
        """Seconds a user just written in this tenant stays invisible (0: no lag): between half and all of
        `lag_ms`, drawn from the tenant's own seeded stream so a run is reproducible."""
        lag = self.spec.effective(tenant_name, "write").lag_s
        if not lag:
            return 0.0
        with self._lock:
            s = self._stream(tenant_name, "lag")
            return lag * (0.5 + 0.5 * s.rng.random())

    def decide(self, tenant_name: str, kind: str) -> Fault | None:
        """The fault for the next request of this tenant and kind ("read" or "write"), or None."""
        if kind not in ("read", "write"):
            raise ValueError(f"fault kind {kind!r} for tenant {tenant_name!r} must be 'read' or 'write'")
        if not self.spec.rules:
            return None
        with self._lock:
            s = self._stream(tenant_name, kind)
            eff = s.eff
            if eff.quiet:
                return None
            if s.burst_left > 0:
                s.burst_left -= 1
                return Fault("429", eff.latency_s, eff.retry_after_s)
            u = s.rng.random()
            chosen: str | None = None
            if u < eff.p429:
                chosen = "429"
                s.burst_left = eff.burst429 - 1
            else:
                edge = eff.p429
                for code, p in zip(_STATUS_KEYS, eff.p_status, strict=True):
                    edge += p
                    if u < edge:
                        chosen = code
                        break
                else:
                    if u < edge + eff.p_reset:
                        chosen = "reset"
        if chosen is None and not eff.latency_s:
            return None
        return Fault(chosen, eff.latency_s, eff.retry_after_s)
