"""Deterministic, realistic tenants for the sandbox, and the `demo` merger seed.

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
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any

from .permissions import DEMO_APP_PERMISSIONS, KNOWN_PERMISSIONS

__all__ = [
    "ALL_PERMISSIONS",
    "DemoSeed",
    "Fixture",
    "PartnerPolicy",
    "SeedError",
    "TenantSeed",
    "demo_seed",
    "generate_tenant",
    "load_seed_file",
]

# Default grants of a seeded app: least privilege for a tenant that is both a sync source and target.
ALL_PERMISSIONS = list(DEMO_APP_PERMISSIONS)
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/xts-pipeline/sandbox-seed")
_TENANT_NAME_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")
_DOMAIN_RE = re.compile(r"(?=.{4,253}\Z)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\Z")
_GUEST_RATE, _DISABLED_RATE, _NO_MAIL_RATE, _NO_EMPLOYEE_ID_RATE = 0.03, 0.02, 0.03, 0.01
_FANOUT = 6  # direct reports per manager inside a department
_DIRECTORS_FROM = 60  # departments this big have directors under their head
_EPOCH = 1_451_606_400  # 2016-01-01T00:00:00Z: the oldest account's creation time
_SPAN_S = 9 * 365 * 86_400


class SeedError(ValueError):
    """A seed request or seed file is invalid; the message names the tenant or file and what to fix."""


# --- pools ------------------------------------------------------------------------------------------
# Names from many locales, on purpose heavy in diacritics and apostrophes.
_GIVEN = (
    "Zoë José Søren Siobhán François Björn Łukasz Chloé Renée Jürgen Núria Ömer Çağla Åsa Maëlle Inês "
    "João Zoltán Dóra Ægir Eoin Aoife Niamh Seán Małgorzata Øyvind Sigrún Hélène Mónica Ángel Raúl "
    "Anaïs Noémie Jérôme Émile Tomás Dağhan Ayşe Gökhan Mikaël Ilse Dörte Günther Karoliina Päivi "
    "Mia Liam Olivia Noah Emma Ava Sophia Isabella Lucas Mason Ethan Amelia Harper Evelyn James Benjamin "
    "Elijah Oliver Charlotte Henry Alexander Grace Daniel Matthew Samuel David Joseph Carter Owen Wyatt "
    "Priya Arjun Ananya Rohan Wei Mei Hiroshi Yuki Haruto Sakura Minjun Jiwoo Kwame Amara Chidi Zainab "
    "Fatima Omar Layla Youssef Mateo Valentina Santiago Camila Diego Lucía Sven Ingrid Lars Astrid "
    "Pieter Femke Willem Katarzyna Piotr Agnieszka Dmitri Olga Nikolai Svetlana Giulia Marco Chiara Luca"
).split()
_SURNAMES = (
    "O'Brien|Núñez|Ødegård|Ní Bhriain|D'Angelo|O'Connor|D'Souza|Mac Giolla Phádraig|García|Müller|"
    "Dubois|Kowalski|Nakamura|Smith|Johnson|Williams|Brown|Jones|Miller|Davis|Rodríguez|Martínez|"
    "Hernández|López|González|Wilson|Anderson|Thomas|Taylor|Moore|Jackson|Martin|Lee|Pérez|Thompson|"
    "White|Harris|Sánchez|Clark|Ramírez|Lewis|Robinson|Walker|Young|Allen|King|Wright|Scott|Torres|"
    "Nguyen|Hill|Flores|Green|Adams|Nelson|Baker|Hall|Rivera|Campbell|Mitchell|Carter|Roberts|"
    "Schäfer|Weiß|Größe|Jäger|Lefèvre|Rousseau|Bérubé|Gonçalves|Araújo|Sørensen|Åkesson|Öberg|"
    "Lindqvist|Nieminen|Järvinen|Kovačević|Dvořák|Novák|Wiśniewski|Wójcik|Łukasiewicz|Yılmaz|Çelik|"
    "Öztürk|Papadopoulos|Rossi|Bianchi|Esposito|Ferrari|Van der Berg|De Vries|Janssen|Ó Súilleabháin|"
    "Ní Dhomhnaill|Mc Carthy|Fitzgerald|Kennedy|Patel|Sharma|Iyer|Reddy|Chen|Wang|Zhang|Liu|Tanaka|"
    "Suzuki|Kim|Park|Choi|Okafor|Mensah|Abdullah|Haddad|Khalil|Silva|Santos|Oliveira|Pereira|Ivanova|"
    "Petrov|Smirnov|Hansen|Johansen|Larsen|Andersen|Nielsen|Berg|Lund|Holm|Eriksson|Ström|Bäckström"
).split("|")
# Users 1..5 always show the awkward cases, so even a small tenant has them: a diacritic given name with
# an apostrophe surname, diacritics in both, letters that do not decompose (ø, ł, æ, ß), a surname with a
# space, and user 5 repeats user 2 (a duplicate display name). Which names fill these slots is drawn per
# tenant (`_forced_names`): with one fixed list every tenant had the same five people, and a merger
# sync met them as look-alikes of the target's admins.
_FORCED_COUNT = 5
_NON_ASCII_GIVEN = tuple(g for g in _GIVEN if not g.isascii())
_UNDECOMPOSED = set("øØłŁæÆßđĐıþÞ")
_FORCED_POOLS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (_NON_ASCII_GIVEN, tuple(s for s in _SURNAMES if "'" in s)),
    (_NON_ASCII_GIVEN, tuple(s for s in _SURNAMES if not s.isascii() and " " not in s and "'" not in s)),
    (tuple(g for g in _GIVEN if _UNDECOMPOSED & set(g)), tuple(s for s in _SURNAMES if _UNDECOMPOSED & set(s))),
    (_NON_ASCII_GIVEN, tuple(s for s in _SURNAMES if " " in s)),
)


def _forced_names(name: str, seed: int) -> list[tuple[str, str]]:
    """The five awkward names of users 1..5, from the tenant's own stream (the 5th repeats the 2nd)."""
    rng = Random(f"xts-seed-forced/{name}/{seed}")
    picked = [(given[rng.randrange(len(given))], surnames[rng.randrange(len(surnames))])
              for given, surnames in _FORCED_POOLS]
    return [*picked, picked[1]]

# (city, state, country, usageLocation, phone prefix, weight)
_PLACES = (
    ("Redmond", "WA", "United States", "US", "+1 425 555", 14),
    ("New York", "NY", "United States", "US", "+1 212 555", 10),
    ("Austin", "TX", "United States", "US", "+1 512 555", 5),
    ("Toronto", "ON", "Canada", "CA", "+1 416 555", 4),
    ("London", None, "United Kingdom", "GB", "+44 20 7946", 8),
    ("Dublin", None, "Ireland", "IE", "+353 1 555", 5),
    ("Oslo", None, "Norway", "NO", "+47 22", 4),
    ("København", None, "Denmark", "DK", "+45 33", 2),
    ("Stockholm", None, "Sweden", "SE", "+46 8", 3),
    ("München", "Bayern", "Germany", "DE", "+49 89", 5),
    ("Zürich", "ZH", "Switzerland", "CH", "+41 44", 2),
    ("Paris", None, "France", "FR", "+33 1", 5),
    ("Madrid", None, "Spain", "ES", "+34 91", 4),
    ("São Paulo", "SP", "Brazil", "BR", "+55 11", 4),
    ("Kraków", None, "Poland", "PL", "+48 12", 3),
    ("Bengaluru", "KA", "India", "IN", "+91 80", 6),
    ("Tokyo", None, "Japan", "JP", "+81 3", 3),
    ("Sydney", "NSW", "Australia", "AU", "+61 2", 3),
    ("Reykjavík", None, "Iceland", "IS", "+354 5", 1),
)
# (department, weight, head title, individual-contributor titles)
_DEPARTMENTS = (
    ("Engineering", 22, "Chief Technology Officer",
     ("Software Engineer", "Senior Software Engineer", "Principal Engineer", "Site Reliability Engineer")),
    ("Sales", 15, "Chief Revenue Officer", ("Account Executive", "Sales Representative", "Sales Engineer")),
    ("Customer Support", 11, "Vice President of Customer Support",
     ("Support Engineer", "Support Specialist", "Escalation Engineer")),
    ("Operations", 9, "Chief Operating Officer", ("Operations Analyst", "Logistics Coordinator")),
    ("Marketing", 8, "Chief Marketing Officer", ("Marketing Specialist", "Content Strategist", "Brand Manager")),
    ("Finance", 8, "Chief Financial Officer", ("Financial Analyst", "Accountant", "Controller")),
    ("IT", 7, "Chief Information Officer", ("Systems Administrator", "IT Support Technician", "Network Engineer")),
    ("Research", 6, "Vice President of Research", ("Research Scientist", "Data Scientist")),
    ("Human Resources", 5, "Chief People Officer", ("HR Generalist", "Recruiter", "HR Business Partner")),
    ("Legal", 3, "General Counsel", ("Corporate Counsel", "Paralegal", "Compliance Officer")),
    ("Procurement", 2, "Vice President of Procurement", ("Buyer", "Procurement Specialist")),
    ("Treasury", 2, "Treasurer", ("Treasury Analyst", "Cash Manager")),
)
_DEPARTMENT_INDEX = {d[0]: i for i, d in enumerate(_DEPARTMENTS)}
_GUEST_DOMAINS = ("litware.com", "adatum.com", "tailspintoys.com", "woodgrovebank.com", "wingtiptoys.com",
                  "proseware.com", "fourthcoffee.com", "alpineskihouse.com")
_FOLD = str.maketrans({"ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "ß": "ss", "ł": "l", "Ł": "L", "đ": "d",
                       "Đ": "D", "þ": "th", "Þ": "Th", "ð": "d", "Ð": "D", "ı": "i"})


def _fold(name: str) -> str:
    """ASCII mail-nickname form of a name: 'Søren Ødegård' -> 'sorenodegard', "O'Brien" -> 'obrien'."""
    decomposed = unicodedata.normalize("NFKD", name.translate(_FOLD))
    return "".join(c for c in decomposed if c.isascii() and c.isalnum()).lower()


def _weighted_pool(weights: Sequence[int]) -> list[int]:
    return [i for i, w in enumerate(weights) for _ in range(w)]


_PLACE_POOL = _weighted_pool([p[5] for p in _PLACES])
_DEPT_POOL = _weighted_pool([d[1] for d in _DEPARTMENTS])


# --- public dataclasses -----------------------------------------------------------------------------
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
        dept_members: list[list[int]] = [[] for _ in _DEPARTMENTS]
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
            given, surname = _GIVEN[rng.randrange(len(_GIVEN))], _SURNAMES[rng.randrange(len(_SURNAMES))]
            guest = i > _FORCED_COUNT and rng.random() < _GUEST_RATE
            enabled = i == 0 or rng.random() >= _DISABLED_RATE
            guest_domain: str | None = _GUEST_DOMAINS[rng.randrange(len(_GUEST_DOMAINS))]
            place = places[rng.randrange(len(places))]
            created = _EPOCH + (_SPAN_S * i) // max(n, 1) + rng.randrange(86_400)
            dept = depts[rng.randrange(len(depts))]
            has_mail = rng.random() >= _NO_MAIL_RATE
            employee_id = None if rng.random() < _NO_EMPLOYEE_ID_RATE else f"{emp_prefix}{100000 + i}"
            phone = None if rng.random() < 0.25 else f"{_PLACES[place][4]} {rng.randrange(10_000):04d}"
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
            head_title, ic_titles = _DEPARTMENTS[d][2], _DEPARTMENTS[d][3]
            dept_name = _DEPARTMENTS[d][0]
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
        return _DEPARTMENTS[d][0] if d >= 0 else ("Executive" if d == -2 else None)

    def user(self, i: int) -> dict[str, Any]:
        """The Graph-shaped user dict for index i."""
        p = self.people[i]
        city, state, country, usage, _, _ = _PLACES[p.place]
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
            "country": None if p.guest_domain else _PLACES[p.place][2],
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


# (displayName, roleTemplateId, description, holders) — ids and texts from Microsoft Entra's built-in roles
# reference; holders are taken in order from the tenant's IT administrators.
_ROLES = (
    ("Global Administrator", "62e90394-69f5-4237-9190-012177145e10",
     "Can manage all aspects of Microsoft Entra ID and Microsoft services that use Microsoft Entra identities.", 2),
    ("User Administrator", "fe930be7-5e62-47db-91af-98c3a49a38b1",
     "Can manage all aspects of users and groups, including resetting passwords for limited admins.", 2),
    ("Privileged Role Administrator", "e8611ab8-c189-46e8-94e1-60213ab1f814",
     "Can manage role assignments in Microsoft Entra ID, and all aspects of Privileged Identity Management.", 1),
)
_IT = next(i for i, d in enumerate(_DEPARTMENTS) if d[0] == "IT")


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
    for display, template, description, holders in _ROLES:
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
    if not isinstance(name, str) or not _TENANT_NAME_RE.match(name):
        raise SeedError(f"tenant name {name!r} must be lowercase letters, digits and inner '-' (e.g. 'contoso' or 'north-wind')")
    if not isinstance(users, int) or isinstance(users, bool) or not 1 <= users <= 2_000_000:
        raise SeedError(f"tenant {name!r}: users must be a whole number from 1 to 2,000,000, got {users!r}")
    domain = (domain or f"{name}.onmicrosoft.com").lower()
    if not _DOMAIN_RE.match(domain):
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


# --- seed files -------------------------------------------------------------------------------------
def load_seed_file(path: str | Path) -> DemoSeed:
    """Read a seed YAML (see demo_seed.yaml for the format); errors name the file and the bad entry."""
    import yaml  # lazy: the CLI's other commands don't need it

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
