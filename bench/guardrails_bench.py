"""Guardrails bench: two goals, printed with MISS when missed.

1. Impersonation: 80,000 incoming users against 4,000 protected values in <= 2 s (index build included,
   static Unicode tables warmed first, as they are after the first cycle of a run).
2. Guardrails on a 100,000-user plan add <= 20 % to the plan step: planner.plan_pair (full plan in DuckDB)
   against load_pair_inputs + run_guardrails over the plan it wrote, in the same run and the same file.

The data are synthetic but shaped like a merger: names drawn from pools (so namesakes exist), a target of
1,000 internal members (800 of them directory-role holders: 4,000 protected values) and 50,000 B2B users
linked to the source (one in ten changed job and department since this pair last wrote it: 5,000 updates
beside 50,000 creates), three role-assignable dynamic groups. No sandbox: only the guardrails and the planner.

    .venv/bin/python bench/guardrails_bench.py [--users 100000]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

FIRST = ["Adele", "Alex", "Allan", "Ben", "Chris", "Diego", "Emily", "Grady", "Henrietta", "Irvin", "Isaiah", "Johanna",
         "Joni", "Lee", "Lidia", "Lynne", "Megan", "Miriam", "Nestor", "Patti", "Pradeep", "Raul", "Sanjay", "Tomas",
         "Wanda", "Yuki", "Zoe", "Amara", "Bruno", "Chloe", "Dmitri", "Elena", "Farah", "Gustav", "Hana", "Ivan"]
LAST = ["Vance", "Wilber", "Deyoung", "Bowen", "Brown", "Gomez", "Braun", "Archibald", "Cline", "Mock", "Sherman",
        "Lang", "Holt", "Larsen", "Lindqvist", "Kim", "Patel", "Nakamura", "Okafor", "Rossi", "Schmidt", "Silva",
        "Tanaka", "Weber", "Young", "Zhang", "Moreau", "Novak", "Olsen", "Quinn", "Reyes", "Sato", "Torres", "Usman"]
DEPTS = ["Sales", "Engineering", "Marketing", "Finance", "HR", "Operations", "Support", "Legal", "Treasury"]


SYLLABLES = ["ka", "ren", "mo", "li", "sta", "ber", "gu", "vin", "do", "shi", "ra", "tel", "no", "vak", "ste", "ford",
             "an", "der", "son", "ma", "ri", "ek", "lo", "wen"]


def surname(rng: random.Random) -> str:
    """A surname from the pool or made of syllables: ~14,000 distinct surnames, so namesakes are rare but real."""
    if rng.random() < 0.2:
        return rng.choice(LAST)
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 3)))).title()


def person(rng: random.Random, i: int, domain: str) -> dict:
    first, last = rng.choice(FIRST), surname(rng)
    alias = f"{first}.{last}{i}".lower()
    return {"displayName": f"{first} {last}", "givenName": first, "surname": last, "mail": f"{alias}@{domain}",
            "userPrincipalName": f"{alias}@{domain}", "mailNickname": alias, "department": rng.choice(DEPTS[:-1]),
            "jobTitle": rng.choice(["Analyst", "Engineer", "Manager", "Director"]), "city": "Seattle",
            "state": "WA", "country": "US", "companyName": "Fabrikam, Inc.", "employeeId": f"E{i:07d}",
            "businessPhones": [f"+1 555 {i % 10000:04d}"], "userType": "Member", "accountEnabled": True,
            "showInAddressList": True}


def bench_impersonation(n_incoming: int = 80_000, n_protected_users: int = 1_340) -> tuple[float, float, int, int]:
    from xts_pipeline.guardrails.confusables import skeleton
    from xts_pipeline.guardrails.impersonation import find_impersonations, protected_identities
    from xts_pipeline.guardrails.policy import InboundPolicy

    rng = random.Random(9)
    skeleton("\u00e9")  # load the confusables and small-capital tables once
    holders = [{"id": f"t{i}", **person(rng, i, "contoso.com")} for i in range(n_protected_users)]
    policy = InboundPolicy()
    protected = protected_identities(policy, holders, role_holders={u["id"]: "Global Administrator" for u in holders})
    rows = [{"source_object_id": f"s{i}", "action": "create", "change_id": f"c{i}", "desired": person(rng, i, "fab.com"),
             "changes": [], "current": {}} for i in range(n_incoming)]
    start, cpu = time.perf_counter(), time.process_time()
    found = find_impersonations(rows, protected)
    return time.perf_counter() - start, time.process_time() - cpu, len(protected), len(found)


def build_db(db: str, users: int) -> None:
    import orjson

    from xts_pipeline import store

    rng = random.Random(7)
    tid = "00000000-0000-0000-0001-000000000001"
    ext = {n: f"extension_abc_{n}" for n in ("xtsSourceTenantId", "xtsSourceObjectId", "xtsSyncConfig")}
    with store.connect(db) as con:
        con.executemany("INSERT INTO target_extensions VALUES ('small', ?, ?)", list(ext.items()))
        desired, target, links = [], [], []
        for i in range(users):
            p = person(rng, i, "fab.com")
            update = {k: v for k, v in p.items() if k != "userPrincipalName"}
            desired.append(("big__small", tid, f"s{i}", p["userPrincipalName"], p["mail"], p["displayName"], True,
                            orjson.dumps(p).decode(), orjson.dumps(update).decode()))
            if i % 2 == 0:  # half are linked B2B users already; one in ten of those has a changed jobTitle
                # What this pair last wrote (links.applied): one linked user in ten has since changed job or
                # department in the source, so the plan holds updates (the three-way rule writes only those).
                applied = {**update, **({"jobTitle": "Associate", "department": "Support"} if i % 20 == 2 else {})}
                links.append(("big__small", tid, f"s{i}", "small", f"t-s{i}", orjson.dumps(applied).decode()))
                cur = {**p, "id": f"t-s{i}", "userType": "Guest", "creationType": "Invitation",
                       ext["xtsSourceTenantId"]: tid, ext["xtsSourceObjectId"]: f"s{i}"}
                if i % 20 == 0:
                    cur["jobTitle"] = "Intern"
                target.append(("small", f"t-s{i}", f"{p['mailNickname']}_fab.com#EXT#@small.onmicrosoft.com",
                               p["mail"], p["displayName"], "Guest", "Invitation", "Accepted", True, tid, f"s{i}",
                               "big__small", orjson.dumps(cur).decode()))
        for i in range(1_000):
            p = person(rng, 10_000_000 + i, "small.com")
            target.append(("small", f"m{i}", p["userPrincipalName"], p["mail"], p["displayName"], "Member", None, None,
                           True, None, None, None, orjson.dumps({**p, "id": f"m{i}"}).decode()))
        import pandas as pd

        d_df = pd.DataFrame(desired, columns=["pair_key", "source_tenant_id", "source_object_id", "upn", "mail", "dn",
                                              "en", "dc", "du"])
        t_df = pd.DataFrame(target, columns=[f"c{i}" for i in range(13)])
        con.register("d_df", d_df)
        con.register("t_df", t_df)
        con.execute("INSERT INTO desired_users (pair_key, source_tenant_id, source_object_id, user_principal_name, mail, "
                    "display_name, account_enabled, desired_create, desired_update, computed_at) SELECT pair_key, source_tenant_id, source_object_id, upn, mail, dn, en, "
                    "CAST(dc AS JSON), CAST(du AS JSON), now() FROM d_df")
        con.execute("INSERT INTO target_users (tenant, id, user_principal_name, mail, display_name, user_type, "
                    "creation_type, external_user_state, account_enabled, link_source_tenant_id, link_source_object_id, "
                    "link_sync_config, attrs) SELECT c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, CAST(c12 AS JSON) "
                    "FROM t_df")
        l_df = pd.DataFrame(links, columns=["pair_key", "tid", "sid", "target", "uid", "applied"])
        con.register("l_df", l_df)
        con.execute("INSERT INTO links (pair_key, source_tenant_id, source_object_id, target_tenant, target_user_id, "
                    "state, linked_at, applied) SELECT pair_key, tid, sid, target, uid, 'active', now(), "
                    "CAST(applied AS JSON) FROM l_df")
        con.executemany("INSERT INTO target_role_members VALUES ('small', 'r1', 'Global Administrator', ?)",
                        [[f"m{i}"] for i in range(800)])
        rules = ['user.department -eq "Treasury"', '(user.jobTitle -contains "Chief") -and (user.userType -eq "Member")',
                 'user.department -in ["Security", "Identity"]']
        con.executemany("INSERT INTO target_groups VALUES ('small', ?, ?, '[\"DynamicMembership\"]', ?, 'On', true, '{}')",
                        [[f"g{i}", f"Privileged {i}", r] for i, r in enumerate(rules)])


def bench_plan(users: int) -> tuple[float, float, dict]:
    from xts_pipeline import planner, store
    from xts_pipeline.guardrails.inputs import load_pair_inputs
    from xts_pipeline.guardrails.policy import InboundPolicy
    from xts_pipeline.guardrails.runner import run_guardrails

    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "bench.duckdb")
        build_db(db, users)
        pair = planner.PairSpec("big__small", "big", "small", "00000000-0000-0000-0001-000000000001")
        start, cpu = time.perf_counter(), time.process_time()
        summary = planner.plan_pair(db, pair, "bench-1", incremental=False)
        plan_s, plan_cpu = time.perf_counter() - start, time.process_time() - cpu
        policy = InboundPolicy(allowed_sources=["big"])
        start, cpu = time.perf_counter(), time.process_time()
        with store.connect(db) as con:
            inputs = load_pair_inputs(con, pair.key, "big", "small")
        report = run_guardrails(inputs, policy, fingerprint=summary.fingerprint)
        guard_s, guard_cpu = time.perf_counter() - start, time.process_time() - cpu
        held = {r.name: len(r.blocked_user_ids) for r in report.results if r.blocked_user_ids}
        return plan_s, guard_s, {"plan": summary.counts, "held": held, "blocked": report.blocked,
                                 "writing": len(inputs.plan_rows), "parts": breakdown(db, pair, policy),
                                 "cpu": guard_cpu, "plan_cpu": plan_cpu}


def breakdown(db: str, pair, policy) -> dict[str, float]:
    """Where the guardrails' time goes, from a second pass over the same plan, step by step (seconds)."""
    from xts_pipeline import store
    from xts_pipeline.guardrails import runner as r
    from xts_pipeline.guardrails.gc_pause import gc_paused
    from xts_pipeline.guardrails.inputs import load_pair_inputs
    from xts_pipeline.guardrails.rows import parsed

    out: dict[str, float] = {}

    def timed(name, fn, *args):
        start = time.perf_counter()
        value = fn(*args)
        out[name] = time.perf_counter() - start
        return value

    with store.connect(db) as con:
        inputs = timed("inputs", load_pair_inputs, con, pair.key, "big", "small")
    with gc_paused():  # as inside run_guardrails
        rows = timed("decode", parsed, inputs.plan_rows)
        protected = r.protected_identities(policy, inputs.target_users, inputs.role_assignable_members,
                                           inputs.role_holders)
        timed("loop_guard", r.loop_guard, inputs.source_users, "big->small")
        timed("impersonation", r.check_impersonation, rows, protected, policy, "big", inputs.verified_domains)
        timed("privilege", r.check_privilege, rows, inputs.target_groups, policy)
        timed("attribute_policy", r.check_attribute_policy, rows, policy)
        timed("attribute_validity", r.check_attribute_validity, rows, policy)
        timed("volume", r.check_volume, rows, policy, inputs.target_size or 0, inputs.existing_from_source,
              "big->small", inputs.target_volume)
        timed("deletions", r.check_deletions, rows, policy, inputs.existing_from_source, "big->small")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--demo", action="store_true", help="list who is held on the demo tenants, then stop")
    args = ap.parse_args()
    imp_s, imp_cpu, n_protected, n_found = bench_impersonation()
    goal = imp_s <= 2.0
    print(f"impersonation: 80,000 incoming vs {n_protected:,} protected values: {imp_s:.2f} s wall, {imp_cpu:.2f} s CPU "
          f"({n_found} held: true namesakes of role holders) goal <= 2 s {'ok' if goal else 'MISS'}")
    print(f"  (machine load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: wall time includes waiting)")
    plan_s, guard_s, info = bench_plan(args.users)
    ratio = guard_s / plan_s
    print(f"plan step ({args.users:,} users, full): {plan_s:.2f} s; guardrails (inputs + all checks): {guard_s:.2f} s; "
          f"ratio {ratio:.0%} goal <= 20 % {'ok' if ratio <= 0.20 else 'MISS'}")
    print(f"  CPU (all threads of the process): plan step {info['plan_cpu']:.2f} s, guardrails {info['cpu']:.2f} s, "
          f"ratio {info['cpu'] / info['plan_cpu']:.0%} (less swayed by other load than the wall ratio)")
    held = {k: v for k, v in info["plan"].items() if v and k != "skip"}
    print("plan holds " + ", ".join(f"{v:,} {k}" for k, v in held.items()) + f" (and {info['plan'].get('skip', 0):,} "
          f"skip); held per guardrail {info['held']}; pair blocked {info['blocked']}")
    parts = info["parts"]
    total = sum(parts.values()) or 1.0
    print(f"  guardrails per step ({info['writing']:,} writing rows, second pass): " + ", ".join(
        f"{k} {v:.2f} s ({v / total:.0%})" for k, v in sorted(parts.items(), key=lambda kv: -kv[1])))
    print(f"  guardrails {guard_s:.2f} s wall, {info['cpu']:.2f} s CPU = {guard_s / max(info['writing'], 1) * 1e6:.0f} us "
          f"per writing row (the goal is the ratio to this run's plan step: a faster plan step raises it)")
    return 0 if goal and ratio <= 0.20 else 1



def demo_lookalikes() -> list[tuple[str, str, str, str]]:
    """Who the impersonation guardrail holds on the demo tenants (xts_pipeline/sandbox/seed/demo_seed.yaml and
    xts_pipeline/demo/topology.yaml): every internal member of each pair's source against its target's
    protected identities. Returns (pair, incoming displayName, protected value, why) for a person to judge."""
    from xts_pipeline.config import load_config
    from xts_pipeline.external import is_external
    from xts_pipeline.guardrails.impersonation import find_impersonations, protected_identities
    from xts_pipeline.sandbox.seed import demo_seed

    seed = demo_seed()
    topo = load_config(REPO / "xts_pipeline" / "demo" / "topology.yaml")
    out = []
    for pair in topo.pairs():
        src, dst = seed.tenant(pair.source), seed.tenant(pair.target)
        policy = topo.inbound_policy(pair.target)
        assignable = {g["id"]: g["displayName"] for g in dst.groups if g.get("isAssignableToRole")}
        roles = {r["id"]: r["displayName"] for r in dst.directory_roles}
        members = {m: assignable[g] for g, m in dst.members if g in assignable}
        holders = {m: roles[r] for r, m in dst.role_members}
        protected = protected_identities(policy, list(dst.users), members, holders)
        rows = [{"source_object_id": u["id"], "action": "create", "change_id": u["id"], "changes": [], "current": {},
                 "desired": u} for u in src.users if u.get("userType") == "Member" and not is_external(u)]
        for f in find_impersonations(rows, protected, policy.impersonation.min_skeleton_length):
            out.append((pair.name, f["value"], f["protected"], f"{f['protected_because']}: {f['how']}"))
    return out


if __name__ == "__main__" and "--demo" in sys.argv:
    for hit in demo_lookalikes():
        print(" | ".join(hit))
    raise SystemExit(0)


if __name__ == "__main__":
    raise SystemExit(main())
