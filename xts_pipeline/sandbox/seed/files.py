"""Seed files: a YAML list of tenants to generate and the partner policies between them (demo_seed.yaml).

Errors name the file and the entry, so a hand-written seed file can be fixed from the message alone.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from .generate import generate_tenant
from .model import ALL_PERMISSIONS, DemoSeed, Fixture, PartnerPolicy, SeedError, TenantSeed


def load_seed_file(path: str | Path) -> DemoSeed:
    """Read a seed YAML (see demo_seed.yaml for the format); errors name the file and the bad entry."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SeedError(f"seed file {path}: cannot be read ({exc.strerror}); check the path") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SeedError(f"seed file {path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    return _seed_from_doc(doc, str(path))


def _seed_from_doc(doc: Any, where: str) -> DemoSeed:
    def fail(loc: str, msg: str) -> SeedError:
        return SeedError(f"seed file {where}: {loc}: {msg}")

    if not isinstance(doc, dict):
        raise fail("top level", "must be a mapping with 'tenants' (and optional 'permissions', 'partner_policies')")
    extra = set(doc) - {"tenants", "permissions", "partner_policies"}
    if extra:
        raise fail("top level", f"unknown keys {sorted(extra)}; allowed: tenants, permissions, partner_policies")
    default_perms = doc.get("permissions", ALL_PERMISSIONS)
    if not isinstance(default_perms, list):
        raise fail("permissions", "must be a list of permission names")
    raw_tenants = doc.get("tenants")
    if not isinstance(raw_tenants, list) or not raw_tenants:
        raise fail("tenants", "must be a non-empty list of {name, users, domain?, seed?, ...}")
    allowed = {"name", "users", "domain", "seed", "company", "ceo", "permissions", "sync_groups", "guests_from",
               "fixtures"}
    tenants: list[TenantSeed] = []
    for k, t in enumerate(raw_tenants):
        loc = f"tenants[{k}]"
        if not isinstance(t, dict):
            raise fail(loc, "must be a mapping with at least name and users")
        bad = set(t) - allowed
        if bad:
            raise fail(loc, f"unknown keys {sorted(bad)}; allowed: {', '.join(sorted(allowed))}")
        if "name" not in t or "users" not in t:
            raise fail(loc, "needs both 'name' and 'users'")
        if any(x.name == t["name"] for x in tenants):
            raise fail(f"{loc}.name", f"tenant {t['name']!r} is listed twice; names must be unique")
        seed_value = t.get("seed", 0)
        if not isinstance(seed_value, int) or isinstance(seed_value, bool):
            raise fail(f"{loc}.seed", f"must be a whole number, got {seed_value!r}")
        raw_guests = t.get("guests_from") or {}
        if not isinstance(raw_guests, dict):
            raise fail(f"{loc}.guests_from", "must map an earlier tenant's name to a guest count, e.g. {contoso: 5}")
        guests_from = []
        for source_name, count in raw_guests.items():
            source = next((x for x in tenants if x.name == source_name), None)
            if source is None:
                raise fail(f"{loc}.guests_from.{source_name}",
                           f"{source_name!r} must be a tenant listed before {t['name']!r} in this file")
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise fail(f"{loc}.guests_from.{source_name}", f"must be a whole number >= 0, got {count!r}")
            guests_from.append((source, count))
        fixtures = _fixtures_from_doc(t.get("fixtures") or [], f"{loc}.fixtures", fail)
        try:
            tenants.append(generate_tenant(
                t["name"], t["users"], t.get("domain"), seed_value, company=t.get("company"), ceo=t.get("ceo"),
                permissions=t.get("permissions", default_perms), sync_groups=t.get("sync_groups", ("Pilot",)),
                guests_from=guests_from, fixtures=fixtures,
            ))
        except SeedError as exc:
            raise fail(loc, str(exc)) from None
    names = [t.name for t in tenants]
    raw_policies = doc.get("partner_policies", "mesh")
    policies: list[PartnerPolicy] = []
    if raw_policies == "mesh":
        policies = [PartnerPolicy(tenant_name=a, partner_tenant_name=b) for a in names for b in names if a != b]
    elif isinstance(raw_policies, list):
        keys = {"tenant", "partner", "is_sync_allowed", "inbound_auto_consent", "outbound_auto_consent"}
        for k, p in enumerate(raw_policies):
            loc = f"partner_policies[{k}]"
            if not isinstance(p, dict) or set(p) - keys or not {"tenant", "partner"} <= set(p):
                raise fail(loc, f"must be a mapping with tenant, partner and optional flags ({', '.join(sorted(keys))})")
            for side in ("tenant", "partner"):
                if p[side] not in names:
                    raise fail(f"{loc}.{side}", f"{p[side]!r} is not one of the seed's tenants {names}")
            flags = {f: p.get(f, True) for f in ("is_sync_allowed", "inbound_auto_consent", "outbound_auto_consent")}
            for f, v in flags.items():
                if not isinstance(v, bool):
                    raise fail(f"{loc}.{f}", f"must be true or false, got {v!r}")
            policies.append(PartnerPolicy(tenant_name=p["tenant"], partner_tenant_name=p["partner"], **flags))
    else:
        raise fail("partner_policies", "must be 'mesh' or a list of {tenant, partner, ...}")
    return DemoSeed(tenants=tenants, partner_policies=policies)


def _fixtures_from_doc(raw: Any, loc: str, fail: Callable[[str, str], SeedError]) -> list[Fixture]:
    """A tenant's `fixtures:` list; each entry {given, surname, department, job_title?, note?}."""
    if not isinstance(raw, list):
        raise fail(loc, "must be a list of {given, surname, department, job_title?, note?}")
    keys = {"given", "surname", "department", "job_title", "note"}
    out: list[Fixture] = []
    for k, f in enumerate(raw):
        where = f"{loc}[{k}]"
        if not isinstance(f, dict) or set(f) - keys or not {"given", "surname", "department"} <= set(f):
            raise fail(where, f"must be a mapping with given, surname, department and optional job_title, note "
                              f"(got {sorted(f) if isinstance(f, dict) else type(f).__name__})")
        for key in ("given", "surname", "department", "job_title", "note"):
            value = f.get(key)
            if value is not None and (not isinstance(value, str) or not value.strip() or len(value) > 256):
                raise fail(f"{where}.{key}", f"must be a non-empty text, got {value!r}")
        out.append(Fixture(given=f["given"].strip(), surname=f["surname"].strip(), department=f["department"],
                           job_title=f.get("job_title"), note=f.get("note") or ""))
    return out


def demo_seed() -> DemoSeed:
    """The merger demo: contoso (parent, 2,000), fabrikam (acquired, 500), northwind (subsidiary, 300)."""
    return load_seed_file(Path(__file__).with_name("demo_seed.yaml"))
