"""Benchmark: 10 config-like mappings x 100,000 generated users (must stay under 10 s).

Prints compile time, total evaluation time, microseconds per evaluation and the ratio to the
10 s limit.  Run: .venv/bin/python bench/expressions_bench.py [users]
"""

from __future__ import annotations

import random
import sys
import time

from xts_pipeline.mappings import compile_mappings

LIMIT_S = 10.0

MAPPINGS = [
    {"target": "displayName", "source": "displayName"},
    {"target": "mailNickname", "type": "Expression",
     "expression": 'ToLower(NormalizeDiacritics(StripSpaces(Join(".", [givenName], [surname]))))'},
    {"target": "businessPhone", "type": "Expression",
     "expression": 'Replace([mobilePhone], , "\\\\+(?<isdCode>\\\\d* )(?<phoneNumber>\\\\d{10})", , "${phoneNumber}", , )'},
    {"target": "givenName", "type": "Expression", "expression": "PCase([givenName])"},
    {"target": "usageLocation", "type": "Expression",
     "expression": 'Switch([country], "US", "Germany", "DE", "France", "FR", "Netherlands", "NL", "Japan", "JP")'},
    {"target": "employeeType", "type": "Expression",
     "expression": 'IIF(InStr([userPrincipalName], "@partners") > 0, "Partner", "Employee")'},
    {"target": "mail", "type": "Expression", "expression": "Coalesce([mail], [userPrincipalName])"},
    {"target": "companyName", "type": "Expression", "expression": 'Append([companyName], " (Contoso)")'},
    {"target": "initials", "type": "Expression", "expression": "Join(\"\", Left([givenName], 1), Left([surname], 1))"},
    {"target": "jobTitle", "type": "Expression", "expression": 'IgnoreFlowIfNullOrEmpty(PCase([jobTitle], " -"))'},
]

GIVEN = ["Zoë", "José", "Ærøskøbing", "JOHN", "mary-ann", "Łukasz", "Renée", "Søren", "Ana", "Björn"]
SURNAMES = ["O'Neil", "Müller", "García Márquez", "SMITH", "van der Berg", "Dvořák", "Nguyễn", "Øster"]
COUNTRIES = ["Germany", "France", "Netherlands", "Japan", "Chile", None]
DEPARTMENTS = ["Sales", "IT", "Finance", "", None]
TITLES = ["SENIOR ENGINEER", "vice-president sales", "", None, "Accountant"]


def generate_users(n: int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    users = []
    for i in range(n):
        g, s = rng.choice(GIVEN), rng.choice(SURNAMES)
        users.append({
            "id": f"00000000-0000-0000-0000-{i:012d}",
            "givenName": g,
            "surname": s,
            "displayName": f"{g} {s}",
            "mobilePhone": f"+{rng.randint(1, 99)} {rng.randint(10**9, 10**10 - 1)}",
            "country": rng.choice(COUNTRIES),
            "department": rng.choice(DEPARTMENTS),
            "mail": None if i % 7 == 0 else f"user{i}@contoso.com",
            "userPrincipalName": f"user{i}@contoso.onmicrosoft.com",
            "companyName": "Fabrikam",
            "jobTitle": rng.choice(TITLES),
        })
    return users


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    users = generate_users(n)
    t0 = time.perf_counter()
    compiled = compile_mappings(MAPPINGS)
    compile_s = time.perf_counter() - t0
    apply = compiled.apply
    t0 = time.perf_counter()
    for user in users:
        apply(user, False)
    total = time.perf_counter() - t0
    evaluations = n * len(MAPPINGS)
    print(f"mappings: {len(MAPPINGS)}  users: {n:,}  evaluations: {evaluations:,}")
    print(f"validate + compile (cold): {compile_s * 1000:.1f} ms")
    print(f"evaluate: {total:.2f} s total, {total / evaluations * 1e6:.2f} us per evaluation, "
          f"{total / n * 1e6:.1f} us per user")
    scaled = total * 100_000 / n
    print(f"ratio to the {LIMIT_S:.0f} s limit for 100,000 users: {scaled / LIMIT_S:.2f} "
          f"({'OK' if scaled < LIMIT_S else 'TOO SLOW'})")


if __name__ == "__main__":
    main()
