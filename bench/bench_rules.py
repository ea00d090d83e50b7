"""Benchmark: dynamic membership rules and scoping filters over 100k users.

Prints wall time for 100,000 users x 10 compiled dynamic rules and for 100,000 users through a
3-filter scoping config, with ratios against the 10 s budget issue 3 sets for mappings and against a
hand-written Python predicate (the floor) measured in the same run.

    .venv/bin/python bench/bench_rules.py [users]
"""

from __future__ import annotations

import random
import sys
import time

from xts_pipeline.dynamic_rules import compile_rule
from xts_pipeline.scoping import compile_filters

BUDGET_S = 10.0
RULES = [
    'user.department -eq "Sales"',
    '(user.department -eq "Sales") -and -not (user.jobTitle -startsWith "SDE")',
    'user.department -eq "Accounts" -and user.city -in ["Lagos", "Ibadan", "Kaduna", "Abuja", "Port Harcourt"]',
    'user.city -notin ["Lagos", "Ibadan", "Kaduna", "Abuja", "Port Harcourt"]',
    '(user.proxyAddresses -any (_ -startsWith "smtp:x"))',
    'user.assignedPlans -any (assignedPlan.servicePlanId -eq "efb87545-963c-4e0d-99df-69c6916d9eb0" '
    '-and assignedPlan.capabilityStatus -eq "Enabled")',
    'user.displayName -match "^Da.*"',
    '(user.objectId -ne null) -and (user.userType -eq "Member")',
    '(user.extensionAttribute15 -eq "Marketing")',
    'user.mail -notEndsWith "@contoso.com" -or user.country -eq "US"',
]
FILTERS = [
    {"clauses": [{"attribute": "department", "operator": "EQUALS", "value": "Sales"},
                 {"attribute": "jobTitle", "operator": "IS NOT NULL", "value": None}]},
    {"clauses": [{"attribute": "userPrincipalName", "operator": "REGEX MATCH", "value": r".*\@contoso.com"}]},
    {"clauses": [{"attribute": "employeeId", "operator": "Greater_Than_OR_EQUALS", "value": 500000}]},
]


def make_users(n: int) -> list[dict]:
    rnd = random.Random(42)
    depts = ["Sales", "Accounts", "Marketing", "HR", None]
    cities = ["Lagos", "Abuja", "Enugu", "Seattle", None]
    users = []
    for i in range(n):
        users.append({
            "id": f"00000000-0000-0000-0000-{i:012d}", "userType": "Member",
            "userPrincipalName": f"u{i}@{'contoso' if i % 2 else 'fabrikam'}.com",
            "displayName": rnd.choice(["David", "Dana", "Ola", "Mia"]) + f" {i}",
            "department": rnd.choice(depts), "city": rnd.choice(cities), "country": rnd.choice(["US", "NG"]),
            "jobTitle": rnd.choice(["SDE II", "Manager", None]), "mail": f"u{i}@contoso.com",
            "employeeId": str(rnd.randrange(1_000_000)),
            "proxyAddresses": [f"SMTP:u{i}@contoso.com", f"smtp:x{i}@fabrikam.com"],
            "assignedPlans": [{"servicePlanId": "efb87545-963c-4e0d-99df-69c6916d9eb0",
                               "capabilityStatus": rnd.choice(["Enabled", "Suspended"])}],
            "onPremisesExtensionAttributes": {"extensionAttribute15": rnd.choice(["Marketing", None])},
        })
    return users


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    users = make_users(n)

    t0 = time.perf_counter()
    compiled = [compile_rule(r, clock=None, strict=False, context="bench") for r in RULES]
    compile_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    hits = 0
    for rule in compiled:
        ev = rule.evaluate
        hits += sum(1 for u in users if ev(u))
    rules_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    floor_hits = 0
    for _ in RULES:  # same number of passes, trivial predicate: the interpreter's floor
        floor_hits += sum(1 for u in users if u.get("department") == "Sales")
    floor_s = time.perf_counter() - t0

    scope = compile_filters(FILTERS)
    t0 = time.perf_counter()
    in_scope_n = sum(1 for u in users if scope(u))
    scope_s = time.perf_counter() - t0

    evals = n * len(RULES)
    print(f"users={n} rules={len(RULES)} compile_all_rules={compile_s * 1e3:.1f} ms")
    print(f"dynamic rules: {rules_s:.2f} s for {evals} evaluations = {rules_s / evals * 1e6:.2f} us/eval, "
          f"{hits} matches; ratio to {BUDGET_S:.0f} s budget = {rules_s / BUDGET_S:.3f}; "
          f"ratio to bare dict-lookup floor ({floor_s:.2f} s) = {rules_s / floor_s:.1f}x")
    print(f"scoping (3 filters + loop guard): {scope_s:.2f} s for {n} users = {scope_s / n * 1e6:.2f} us/user, "
          f"{in_scope_n} in scope")


if __name__ == "__main__":
    main()
