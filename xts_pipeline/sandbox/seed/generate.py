"""The seed generator: deterministic, realistic tenants from (tenant name, seed) and the data in names.yaml.

Everything derives from (tenant name, seed): ids are uuid5, attributes come from one seeded RNG
pass that fills small per-user arrays, and the Graph-shaped user dicts are built lazily from those
arrays, so 100,000 users fit in memory and take a few seconds. The data is deliberately awkward:
diacritics and apostrophes, duplicate display names, null mails, disabled accounts, existing B2B
guests, a manager tree, dynamic groups with Entra rules and assigned groups used as sync scope.
"""

from __future__ import annotations

import hashlib
import re
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from random import Random
from typing import Any

from ..permissions import KNOWN_PERMISSIONS
from .data import DEPARTMENTS, GIVEN, GUEST_DOMAINS, PLACES, ROLES, SURNAMES
from .model import ALL_PERMISSIONS, Fixture, SeedError, TenantSeed

_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/xts-pipeline/sandbox-seed")
_TENANT_NAME_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")
_DOMAIN_RE = re.compile(r"(?=.{4,253}\Z)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\Z")
_GUEST_RATE, _DISABLED_RATE, _NO_MAIL_RATE, _NO_EMPLOYEE_ID_RATE = 0.03, 0.02, 0.03, 0.01
_FANOUT = 6  # direct reports per manager inside a department
_DIRECTORS_FROM = 60  # departments this big have directors under their head
_EPOCH = 1_451_606_400  # 2016-01-01T00:00:00Z: the oldest account's creation time
_SPAN_S = 9 * 365 * 86_400


# Users 1..5 always show the awkward cases, so even a small tenant has them: a diacritic given name with
# an apostrophe surname, diacritics in both, letters that do not decompose (ø, ł, æ, ß), a surname with a
# space, and user 5 repeats user 2 (a duplicate display name). Which names fill these slots is drawn per
# tenant (`_forced_names`): with one fixed list every tenant had the same five people, and a merger
# sync met them as look-alikes of the target's admins.
_FORCED_COUNT = 5
_NON_ASCII_GIVEN = tuple(g for g in GIVEN if not g.isascii())
_UNDECOMPOSED = set("øØłŁæÆßđĐıþÞ")
_FORCED_POOLS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (_NON_ASCII_GIVEN, tuple(s for s in SURNAMES if "'" in s)),
    (_NON_ASCII_GIVEN, tuple(s for s in SURNAMES if not s.isascii() and " " not in s and "'" not in s)),
    (tuple(g for g in GIVEN if _UNDECOMPOSED & set(g)), tuple(s for s in SURNAMES if _UNDECOMPOSED & set(s))),
    (_NON_ASCII_GIVEN, tuple(s for s in SURNAMES if " " in s)),
)


def _forced_names(name: str, seed: int) -> list[tuple[str, str]]:
    """The five awkward names of users 1..5, from the tenant's own stream (the 5th repeats the 2nd)."""
    rng = Random(f"xts-seed-forced/{name}/{seed}")
    picked = [(given[rng.randrange(len(given))], surnames[rng.randrange(len(surnames))])
              for given, surnames in _FORCED_POOLS]
    return [*picked, picked[1]]


_DEPARTMENT_INDEX = {d.name: i for i, d in enumerate(DEPARTMENTS)}
_FOLD = str.maketrans({"ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "ß": "ss", "ł": "l", "Ł": "L", "đ": "d",
                       "Đ": "D", "þ": "th", "Þ": "Th", "ð": "d", "Ð": "D", "ı": "i"})


def _fold(name: str) -> str:
    """ASCII mail-nickname form of a name: 'Søren Ødegård' -> 'sorenodegard', "O'Brien" -> 'obrien'."""
    decomposed = unicodedata.normalize("NFKD", name.translate(_FOLD))
    return "".join(c for c in decomposed if c.isascii() and c.isalnum()).lower()


def _weighted_pool(weights: Sequence[int]) -> list[int]:
    return [i for i, w in enumerate(weights) for _ in range(w)]


_PLACE_POOL = _weighted_pool([p.weight for p in PLACES])
_DEPT_POOL = _weighted_pool([d.weight for d in DEPARTMENTS])



# --- ids and secrets --------------------------------------------------------------------------------
def _uuid(*parts: object) -> str:
    return str(uuid.uuid5(_NAMESPACE, "/".join(str(p) for p in parts)))


_SECRET_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.~"  # noqa: S105


def _client_secret(name: str, seed: int) -> str:
    """A 40-char secret in Entra's shape ('abc8Q~' + 34); deterministic, because it is a sandbox secret."""
    digest = hashlib.sha512(f"xts-sandbox-client-secret/{name}/{seed}".encode()).digest()
    chars = [_SECRET_ALPHABET[b % len(_SECRET_ALPHABET)] for b in digest]
    head = "".join(_SECRET_ALPHABET[b % 52] for b in digest[:3]) + str(digest[3] % 10)
    return head + "Q~" + "".join(chars[4:38])


# --- the per-tenant plan ----------------------------------------------------------------------------
@dataclass(slots=True)
class _Person:
    """The small per-user facts decided by the RNG pass; the dict is built from these on demand."""

    given: str
    surname: str
    local: str  # unique mail nickname (members) or guest mail local part
    place: int
    dept: int  # -1: guest, -2: CEO
    title: str | None
    manager: int  # index, -1 for none
    guest_domain: str | None
    enabled: bool
    has_mail: bool
    employee_id: str | None
    phone: str | None
    office: int
    created: int  # epoch seconds
    roll: int  # a spare draw: picks the job title once the person's place in the tree is known


class _Users(Sequence[dict[str, Any]]):
    """Lazy user dicts: nothing per user is kept but a _Person; each dict is built when asked for."""

    def __init__(self, tenant: _Tenant) -> None:
        self._t = tenant

    def __len__(self) -> int:
        return len(self._t.people)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self._t.user(j) for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"tenant {self._t.name!r} has {len(self)} users; index {i} is out of range")
        return self._t.user(i)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        user = self._t.user
        for i in range(len(self._t.people)):
            yield user(i)


class _Tenant:
    def __init__(self, name: str, n: int, domain: str, seed: int, company: str, ceo: str | None,
                 guest_overrides: Sequence[tuple[str, str, str, str]] = (),
                 fixtures: Sequence[Fixture] = ()) -> None:
        self.name, self.domain, self.seed, self.company = name, domain, seed, company
        self.ids = [_uuid("user", name, seed, i) for i in range(n)]
        self.people: list[_Person] = []
        self._plan(n, ceo, list(guest_overrides), list(fixtures))

    def _plan(self, n: int, ceo: str | None, overrides: list[tuple[str, str, str, str]],
              fixtures: list[Fixture]) -> None:
        # Every user consumes the same number of draws, so overriding a few users shifts nobody else.
        rng = Random(f"xts-seed/{self.name}/{self.seed}")  # str seeds are stable across runs
        taken: dict[str, int] = {}
        dept_members: list[list[int]] = [[] for _ in DEPARTMENTS]
        places, depts = _PLACE_POOL, _DEPT_POOL
        emp_prefix = "".join(c for c in self.name.upper() if c.isalpha())[:2] or "EM"
        folded: dict[str, str] = {}
        # Guests who are users of another seeded tenant take the last indices (the most recent invitations),
        # the demo's deliberate fixtures the ones just before them (generate_tenant checks they fit).
        first_override = max(n - len(overrides), _FORCED_COUNT + 1)
        first_fixture = first_override - len(fixtures)
        forced = _forced_names(self.name, self.seed)
        fixed_titles: dict[int, str] = {}

        def fold(s: str) -> str:
            f = folded.get(s)
            if f is None:
                f = folded[s] = _fold(s)
            return f

        for i in range(n):
            given, surname = GIVEN[rng.randrange(len(GIVEN))], SURNAMES[rng.randrange(len(SURNAMES))]
            guest = i > _FORCED_COUNT and rng.random() < _GUEST_RATE
            enabled = i == 0 or rng.random() >= _DISABLED_RATE
            guest_domain: str | None = GUEST_DOMAINS[rng.randrange(len(GUEST_DOMAINS))]
            place = places[rng.randrange(len(places))]
            created = _EPOCH + (_SPAN_S * i) // max(n, 1) + rng.randrange(86_400)
            dept = depts[rng.randrange(len(depts))]
            has_mail = rng.random() >= _NO_MAIL_RATE
            employee_id = None if rng.random() < _NO_EMPLOYEE_ID_RATE else f"{emp_prefix}{100000 + i}"
            phone = None if rng.random() < 0.25 else f"{PLACES[place].phone_prefix} {rng.randrange(10_000):04d}"
            office = rng.randrange(1, 40)
            roll = rng.randrange(1 << 30)
            if i == 0 and ceo:
                given, _, surname = ceo.strip().partition(" ")
                surname = surname or "Executive"
            elif 1 <= i <= _FORCED_COUNT:
                given, surname = forced[i - 1]
            fixture = fixtures[i - first_fixture] if first_fixture <= i < first_override else None
            if fixture is not None:
                given, surname, guest, enabled, has_mail = fixture.given, fixture.surname, False, True, True
                dept = _DEPARTMENT_INDEX[fixture.department]
                if fixture.job_title:
                    fixed_titles[i] = fixture.job_title
            base = f"{fold(given)}.{fold(surname)}"
            if i >= first_override and i - first_override < len(overrides):
                given, surname, base, guest_domain = overrides[i - first_override]
                guest = True
            if guest:
                key = f"{base}_{guest_domain}"
                dept, title, has_mail, employee_id, phone = -1, None, True, None, None
            else:
                key, guest_domain = base, None
                if i == 0:
                    dept, title, has_mail = -2, "Chief Executive Officer", True
                else:
                    dept_members[dept].append(i)
                    title = None  # decided below, from the position in the department's tree
            count = taken.get(key, 0) + 1
            taken[key] = count
            local = base if count == 1 else f"{base}{count}"
            self.people.append(_Person(
                given=given, surname=surname, local=local, place=place, dept=dept, title=title, manager=-1,
                guest_domain=guest_domain, enabled=enabled, has_mail=has_mail, employee_id=employee_id,
                phone=phone, office=office, created=created, roll=roll,
            ))
        # Manager tree: CEO -> department heads -> a _FANOUT-ary tree inside each department.
        for d, members in enumerate(dept_members):
            head_title, ic_titles, dept_name = DEPARTMENTS[d].head, DEPARTMENTS[d].titles, DEPARTMENTS[d].name
            levels = [0] * len(members)
            for p, i in enumerate(members):
                person = self.people[i]
                if p == 0:
                    person.manager, person.title = 0, head_title
                    continue
                boss = (p - 1) // _FANOUT
                levels[p] = levels[boss] + 1
                person.manager = members[boss]
                # Small departments have managers but no directors, so titles stay believable.
                rank = levels[p] + (0 if len(members) >= _DIRECTORS_FROM else 1)
                if rank == 1:
                    person.title = f"Director of {dept_name}"
                elif rank == 2:
                    person.title = f"{dept_name} Manager"
                else:
                    person.title = ic_titles[person.roll % len(ic_titles)]
        for i, title in fixed_titles.items():
            self.people[i].title = title

    def department(self, i: int) -> str | None:
        d = self.people[i].dept
        return DEPARTMENTS[d].name if d >= 0 else ("Executive" if d == -2 else None)

    def user(self, i: int) -> dict[str, Any]:
        """The Graph-shaped user dict for index i."""
        p = self.people[i]
        city, state, country, usage, _, _ = PLACES[p.place]
        guest = p.guest_domain is not None
        if guest:
            email = f"{p.local}@{p.guest_domain}"
            nickname = f"{p.local}_{p.guest_domain}#EXT#"
            upn = f"{nickname}@{self.domain}"
            mail, other = email, [email]
            company, office = None, None
            city = state = country = usage = None
        else:
            nickname = p.local
            upn = f"{p.local}@{self.domain}"
            mail, other = (upn if p.has_mail else None), []
            company, office = self.company, f"{city} {p.office}/{1000 + (i % 900)}"
        return {
            "id": self.ids[i],
            "userPrincipalName": upn,
            "mail": mail,
            "otherMails": other,
            "displayName": f"{p.given} {p.surname}",
            "givenName": p.given,
            "surname": p.surname,
            "mailNickname": nickname,
            "jobTitle": p.title,
            "department": self.department(i),
            "companyName": company,
            "officeLocation": office,
            "city": city,
            "state": state,
            "country": country,
            "usageLocation": usage,
            "employeeId": p.employee_id,
            "mobilePhone": p.phone,
            "accountEnabled": p.enabled,
            "userType": "Guest" if guest else "Member",
            "creationType": "Invitation" if guest else None,
            "externalUserState": "Accepted" if guest else None,
            "showInAddressList": None if guest else True,
            "createdDateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(p.created)),
            "_managerId": self.ids[p.manager] if p.manager >= 0 else None,
        }

    # Facts the dynamic rules read, without building the whole dict.
    def facts(self, i: int) -> dict[str, Any]:
        p = self.people[i]
        return {
            "department": self.department(i),
            "jobTitle": p.title,
            "country": None if p.guest_domain else PLACES[p.place].country,
            "userType": "Guest" if p.guest_domain else "Member",
            "accountEnabled": p.enabled,
        }


def _eq(prop: str, value: object) -> Callable[[dict[str, Any]], bool]:
    """Entra -eq: strings compare case-insensitively."""
    if isinstance(value, str):
        low = value.lower()
        return lambda u: isinstance(u.get(prop), str) and u[prop].lower() == low
    return lambda u: u.get(prop) == value


def _contains(prop: str, value: str) -> Callable[[dict[str, Any]], bool]:
    low = value.lower()
    return lambda u: isinstance(u.get(prop), str) and low in u[prop].lower()


# (displayName, membershipRule, the same rule as a predicate, isAssignableToRole)
_DYNAMIC_GROUPS: tuple[tuple[str, str, Callable[[dict[str, Any]], bool], bool], ...] = (
    ("Finance Department", '(user.department -eq "Finance")', _eq("department", "Finance"), False),
    ("All Directors", '(user.jobTitle -contains "Director")', _contains("jobTitle", "Director"), False),
    # Entra itself refuses dynamic role-assignable groups; issue 2 asks for one so guardrails can be tested.
    ("Privileged Finance Admins", '(user.department -eq "Treasury")', _eq("department", "Treasury"), True),
    ("Norway Staff", '(user.country -eq "Norway") -and (user.userType -eq "Member")',
     lambda u: _eq("country", "Norway")(u) and _eq("userType", "Member")(u), False),
    ("All Active Employees", '(user.userType -eq "Member") -and (user.accountEnabled -eq true)',
     lambda u: _eq("userType", "Member")(u) and u.get("accountEnabled") is True, False),
    ("All Guests", '(user.userType -eq "Guest")', _eq("userType", "Guest"), False),
)


def _group(tenant: _Tenant, slug: str, display: str, description: str, *, rule: str | None = None,
           role_assignable: bool = False) -> dict[str, Any]:
    return {
        "id": _uuid("group", tenant.name, tenant.seed, slug),
        "displayName": display,
        "description": description,
        "mailNickname": _fold(display) or slug,
        "mail": None,
        "mailEnabled": False,
        "securityEnabled": True,
        "groupTypes": ["DynamicMembership"] if rule else [],
        "membershipRule": rule,
        "membershipRuleProcessingState": "On" if rule else None,
        "isAssignableToRole": role_assignable,
        "visibility": "Private" if role_assignable else None,
        "createdDateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(_EPOCH + 3600)),
    }


def _groups(tenant: _Tenant, sync_groups: Sequence[str]) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    groups: list[dict[str, Any]] = []
    members: list[tuple[str, str]] = []
    n = len(tenant.people)
    facts = [tenant.facts(i) for i in range(n)]
    for display, rule, pred, role in _DYNAMIC_GROUPS:
        g = _group(tenant, f"dyn/{display}", display, f"Dynamic: {rule}", rule=rule, role_assignable=role)
        groups.append(g)
        members.extend((g["id"], tenant.ids[i]) for i in range(n) if pred(facts[i]))
    rng = Random(f"xts-seed-groups/{tenant.name}/{tenant.seed}")
    internal = [i for i in range(n) if tenant.people[i].guest_domain is None]
    guests = [i for i in range(n) if tenant.people[i].guest_domain is not None]
    admins = _group(tenant, "static/admins", "Tenant Administrators",
                    "Assigned, role-assignable: holds the tenant's admin roles", role_assignable=True)
    groups.append(admins)
    # The tenant's own admins (who also hold its directory roles), not its first three users: the CEO and
    # two awkward-name slots, who have no admin job and made every merger sync flag their namesakes.
    members.extend((admins["id"], tenant.ids[i]) for i in _admin_candidates(tenant)[:3])
    for target in sync_groups:
        # Scope for "assigned users and groups": ~10 % of internal members, a guest (which sync must skip),
        # and a nested group whose members must NOT count (Entra doesn't expand nested groups).
        g = _group(tenant, f"sync/{target}", f"XTS Sync – {target}",
                   f"Users in scope of cross-tenant sync to {target}")
        nested = _group(tenant, f"sync/{target}/nested", f"XTS Sync – {target} (wave 2)",
                        f"Nested in 'XTS Sync – {target}': not in scope, nested groups aren't expanded")
        groups += [g, nested]
        picked = sorted(rng.sample(internal, max(1, len(internal) // 10))) if internal else []
        members.extend((g["id"], tenant.ids[i]) for i in picked)
        if guests:
            members.append((g["id"], tenant.ids[guests[0]]))
        members.append((g["id"], nested["id"]))
        chosen = set(picked)
        rest = [i for i in internal if i not in chosen]
        members.extend((nested["id"], tenant.ids[i]) for i in rest[: max(1, len(rest) // 50)])
    return groups, members


_IT = next(i for i, d in enumerate(DEPARTMENTS) if d.name == "IT")


def _admin_candidates(tenant: _Tenant) -> list[int]:
    """Who administers the tenant, in order: enabled systems administrators, other enabled IT staff, then
    (tiny tenants) other enabled members, the CEO (index 0) last."""
    people = tenant.people
    enabled_it = [i for i, p in enumerate(people) if p.dept == _IT and p.enabled]
    admins = [i for i in enabled_it if people[i].title == "Systems Administrator"]
    others = [i for i, p in enumerate(people) if i and p.enabled and p.guest_domain is None and p.dept != _IT]
    return list(dict.fromkeys([*admins, *enabled_it, *others, 0]))


def _directory_roles(tenant: _Tenant) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """A few activated roles held by the tenant's admins (`_admin_candidates`), so guardrails can protect
    real role holders."""
    candidates = _admin_candidates(tenant)
    roles: list[dict[str, Any]] = []
    members: list[tuple[str, str]] = []
    at = 0
    for display, template, description, holders in ROLES:
        role = {"id": _uuid("directoryRole", tenant.name, tenant.seed, template), "deletedDateTime": None,
                "description": description, "displayName": display, "roleTemplateId": template}
        roles.append(role)
        for i in candidates[at: at + holders]:
            members.append((role["id"], tenant.ids[i]))
        at += holders
    return roles, members


def generate_tenant(
    name: str,
    users: int,
    domain: str | None = None,
    seed: int = 0,
    *,
    company: str | None = None,
    ceo: str | None = None,
    permissions: Sequence[str] | None = None,
    sync_groups: Sequence[str] = ("Pilot",),
    guests_from: Sequence[tuple[TenantSeed, int]] = (),
    fixtures: Sequence[Fixture] = (),
) -> TenantSeed:
    """A realistic tenant, the same for the same arguments.

    `ceo` ("Given Surname") names user 0; `sync_groups` names the assigned groups
    "XTS Sync – <name>" created for use as sync scope. `guests_from` [(other tenant, k)] makes the
    last k users existing B2B guests who are real users of that tenant (pre-merger collaboration),
    picked from its "XTS Sync – <this tenant>" group when it has one, so a sync meets them.
    `fixtures` are deliberate members (attack cases) placed just before those guests.
    """
    if not isinstance(name, str) or not _TENANT_NAME_RE.fullmatch(name):
        raise SeedError(f"tenant name {name!r} must be lowercase letters, digits and inner '-' (e.g. 'contoso' or 'north-wind')")
    if not isinstance(users, int) or isinstance(users, bool) or not 1 <= users <= 2_000_000:
        raise SeedError(f"tenant {name!r}: users must be a whole number from 1 to 2,000,000, got {users!r}")
    domain = (domain or f"{name}.onmicrosoft.com").lower()
    if not _DOMAIN_RE.fullmatch(domain):
        raise SeedError(f"tenant {name!r}: domain {domain!r} is not a DNS name like 'contoso.onmicrosoft.com'")
    perms = list(ALL_PERMISSIONS if permissions is None else permissions)
    unknown = [p for p in perms if p not in KNOWN_PERMISSIONS]
    if unknown:
        raise SeedError(f"tenant {name!r}: unknown permissions {unknown}; the sandbox knows "
                        f"{', '.join(KNOWN_PERMISSIONS)}")
    company = company or f"{name.replace('-', ' ').title()} Ltd."
    overrides = [o for source, k in guests_from for o in _guests_from(source, name, k)]
    for f in fixtures:
        if f.department not in _DEPARTMENT_INDEX:
            raise SeedError(f"tenant {name!r}: fixture {f.display_name!r} has department {f.department!r}; "
                            f"use one of {', '.join(_DEPARTMENT_INDEX)}")
    if fixtures and users - len(overrides) - len(fixtures) <= _FORCED_COUNT:
        raise SeedError(f"tenant {name!r}: {users} users leave no room for {len(fixtures)} fixture(s) and "
                        f"{len(overrides)} guest(s) after the CEO and {_FORCED_COUNT} fixed users; add users")
    tenant = _Tenant(name, users, domain, seed, company, ceo, overrides, fixtures)
    groups, members = _groups(tenant, list(sync_groups))
    roles, role_members = _directory_roles(tenant)
    return TenantSeed(
        name=name,
        tenant_id=_uuid("tenant", name, seed),
        domain=domain,
        display_name=company,
        client_id=_uuid("client", name, seed),
        client_secret=_client_secret(name, seed),
        app_object_id=_uuid("application", name, seed),
        permissions=perms,
        users=_Users(tenant),
        groups=groups,
        members=members,
        directory_roles=roles,
        role_members=role_members,
        user_count=users,
        seed=seed,
    )


def _guests_from(source: TenantSeed, target_name: str, k: int) -> list[tuple[str, str, str, str]]:
    """(given, surname, mail alias, mail domain) of k enabled members of `source` who have a mail."""
    if k < 0:
        raise SeedError(f"tenant {target_name!r}: guests_from {source.name!r} count must be >= 0, got {k}")
    label = f"XTS Sync – {target_name.replace('-', ' ').title()}"
    index = {uid: i for i, uid in enumerate(u["id"] for u in source.users)} if k else {}
    scope_ids = {g["id"] for g in source.groups if g["displayName"] == label}
    candidates = [index[m] for g, m in source.members if g in scope_ids and m in index]
    candidates += range(_FORCED_COUNT + 1, len(source.users))  # fallback: everyone else
    out: list[tuple[str, str, str, str]] = []
    seen: set[int] = set()
    for i in candidates:
        if len(out) >= k:
            break
        if i in seen:
            continue
        seen.add(i)
        u = source.users[i]
        if u["userType"] == "Member" and u["accountEnabled"] and u["mail"]:
            alias, _, mail_domain = u["mail"].partition("@")
            out.append((u["givenName"], u["surname"], alias, mail_domain))
    return out

