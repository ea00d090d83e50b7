"""Entra's "Provision on demand" steps for one user, read back from the store after a one-user run.

Entra's on-demand provisioning shows four steps: import user, determine if user is in scope, match
user between source and target, perform action (with the modified properties). We add the target's
guardrail verdicts between match and action. `explain()` reads the same tables the run wrote (raw and
staged users, rejects, desired state and mapping errors, the plan, holds and the provisioning log), so
`xts provision` and the run's metadata tell the same story. Pure reads; no Graph call.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from xts_pipeline import plan_meta, queries, store
from xts_pipeline.guardrails import verdicts
from xts_pipeline.scoping import attribute_getter, compile_filters, is_internal_member


@dataclass
class Step:
    """One step as Entra's on-demand page shows it: a title, an outcome and the facts behind it."""

    name: str
    outcome: str  # "Success", "Skipped", "Failure", "Held", "Blocked", "Not run"
    details: list[str] = field(default_factory=list)


def find_source_user(con: Any, tenant: str, who: str) -> tuple[str, dict] | None:
    """(object id, Graph record) of the source user with this id, UPN or mail (case-insensitive)."""
    row = con.execute(
        queries.load("on_demand/find_source_user"), {"t": tenant, "w": who}).fetchone()
    return (row[0], json.loads(row[1])) if row else None


def _scope_step(con: Any, pair: Any, sid: str, user: dict) -> tuple[Step, bool]:
    step = Step("Determine if user is in scope", "Success")
    internal = is_internal_member(user)
    step.details.append(f"internal member (userType Member, not invited): {internal} "
                        f"(userType={user.get('userType')!r}, creationType={user.get('creationType')!r})")
    groups = list(getattr(pair.scope, "groups", []) or [])
    assigned = True
    if groups:
        from xts_pipeline.desired import assigned_ids

        assigned = sid in (assigned_ids(con, pair.source, groups) or set())
        step.details.append(f"assigned through groups {', '.join(groups)}: {assigned}")
    else:
        step.details.append("assignment: all members of the source (scope.all_members)")
    any_filter = not pair.filters
    for i, f in enumerate(pair.filters or [], 1):
        results = []
        for clause in f["clauses"]:
            ok = compile_filters([{"clauses": [clause]}], loop_guard=False)(user)
            value = attribute_getter(clause["attribute"])(user)
            results.append(ok)
            step.details.append(f"filter {i}: {clause['attribute']} {clause['operator']} "
                                f"{clause.get('value', '')!r} -> {ok} (value {value!r})")
        any_filter = any_filter or all(results)
    if not pair.filters:
        step.details.append("no scoping filter: every assigned member is in scope")
    ok = internal and assigned and any_filter
    step.outcome = "Success" if ok else "Skipped"
    step.details.append("in scope" if ok else "out of scope: nothing is written for this user")
    return step, ok


def explain(db: str | Path, topology: Any, pair_key: str, who: str, cycle_id: str | None = None) -> list[Step]:
    """The steps for `who` in pair `pair_key`, from the store as the last (one-user) run left it."""
    pair = topology.pair(pair_key)
    steps: list[Step] = []
    with store.connect(db) as con:
        found = find_source_user(con, pair.source, who)
        if found is None:
            total = store.count(con, "raw_users", "tenant", pair.source)
            return [Step("Import user", "Failure",
                         [f"no user with id, UPN or mail {who!r} in source {pair.source} ({total} users read)"])]
        sid, user = found
        imp = Step("Import user", "Success", [
            f"source {pair.source}: {user.get('userPrincipalName')} (id {sid}), displayName "
            f"{user.get('displayName')!r}, mail {user.get('mail')!r}, accountEnabled {user.get('accountEnabled')}"])
        rejected = con.execute(queries.load("on_demand/rejected"),
                               [pair.source, sid]).fetchone()
        if rejected:
            imp.outcome = "Failure"
            imp.details.append(f"rejected by staging: {rejected[0]}")
            return [imp]
        steps.append(imp)
        scope, ok = _scope_step(con, pair, sid, user)
        steps.append(scope)
        if not ok:
            return steps
        err = con.execute(queries.load("on_demand/mapping_error"),
                          [pair.key, sid]).fetchone()
        if err:
            steps.append(Step("Attribute mappings", "Failure", [err[0]]))
            return steps
        plan = con.execute(
            queries.load("on_demand/plan_rows"), [pair.key, sid]).fetchall()
        meta = plan_meta.read(con, pair.key)
        cycle = cycle_id or (meta.cycle_id if meta else None)
        if not plan:
            steps.append(Step("Match user between source and target", "Skipped",
                              ["no plan row: the last plan of this pair did not include this user"]))
            return steps
        first = plan[0]
        how = {"link": "linked: the target user carries this pair's link extension (source tenant + object id)",
               "adopt": "adopted: an existing B2B user of the same person in the target, by verified mail",
               "mail": "matched by mail", None: "no match: a new B2B user"}.get(first[4], f"matched ({first[4]})")
        steps.append(Step("Match user between source and target", "Success",
                          [how + (f"; target user {first[2]}" if first[2] else ""), f"planner: {first[3] or ''}"]))
        holds = con.execute(queries.load("on_demand/holds"), [pair.key, cycle, [r[0] for r in plan]]).fetchall()
        guard = Step("Guardrails of the target", "Success", ["every per-user guardrail passed"])
        if holds:
            guard = Step("Guardrails of the target", "Held", [f"held by {c}: {r}" for c, r in holds])
        if meta and meta.blocked_reason:
            guard.outcome, guard.details = "Blocked", [*guard.details, f"pair blocked: {meta.blocked_reason}"]
        report, _ = verdicts.current(con, pair.key)  # the guarded plan's verdicts on this same plan
        for v in report.stops() if report is not None else ():
            guard.outcome, guard.details = "Blocked", [*guard.details, f"pair blocked by guardrail_{v.check_name}: "
                                                                       f"{v.message}"]
        steps.append(guard)
        logs = {r[0]: r[1:] for r in con.execute(
            queries.load("on_demand/logged"),
            [pair.key, cycle, sid]).fetchall()}
        for change_id, action, _tid, reason, _m, changes, _c in plan:
            detail = [f"{action}: {reason or ''}"]
            for c in json.loads(changes or "[]"):
                detail.append(f"{c.get('property')}: {c.get('old')!r} -> {c.get('new')!r}")
            outcome = "Skipped" if action == "skip" else "Not run"
            if change_id in logs:
                status, code, message, why = logs[change_id]
                outcome = status
                detail.append(" ".join(str(x) for x in (code, message, why) if x))
            steps.append(Step("Perform action", outcome, detail))
    return steps


def render(steps: list[Step]) -> str:
    """Numbered steps for the terminal (and the run's markdown metadata)."""
    lines = []
    for i, s in enumerate(steps, 1):
        lines.append(f"{i}. {s.name}: {s.outcome}")
        lines += [f"   - {d}" for d in s.details]
    return "\n".join(lines)


def as_json(steps: list[Step]) -> list[dict]:
    return [asdict(s) for s in steps]
