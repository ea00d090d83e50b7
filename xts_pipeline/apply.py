"""Run one pair's plan against the target through graph.writer: the orchestration of an apply.

Every write is journaled before it is sent (journal.py: crash safety, pending and confirmed writes and
the links they make); a rerun after a kill reconciles what is still in flight first. Manager references
are written in their own pass once the users they point at exist (manager_refs.py). DuckDB connections
are opened only between network calls, never held across them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from xts_pipeline import journal, lease, paths, plan_meta, queries, store
from xts_pipeline.guardrails import quarantine
from xts_pipeline.guardrails.policy import QuarantinePolicy
from xts_pipeline.manager_refs import manager_refs, record_manager
from xts_pipeline.planner import PairSpec, consistency_problems, mark_applied
from xts_pipeline.provisioning_log import LogEntry, drop_held
from xts_pipeline.provisioning_log import write as write_log
from xts_pipeline.vocabulary import LINK_EXTENSIONS, shown_pair

FLUSH_EVERY = 100
FLUSH_SECONDS = 1.0
# A write refused for who we are rather than what we sent: the app's credential or consent is broken.
_AUTH_CODES = frozenset({"AuthError", "PermissionError_", "InvalidAuthenticationToken", "Authorization_RequestDenied"})
_REMOVALS = ("delete", "disable")
# A create whose invitation returned a user that already existed is not ours: never a pending link.
_EXISTING_USER_CODES = frozenset({"ExistingUserReturned"})


class PairQuarantinedError(RuntimeError):
    """The target refused the pair's credentials during apply; the pair is now quarantined."""


@dataclass
class ApplyContext:
    """What apply needs beyond the plan: the target's identity and the pair's settings."""

    pair: PairSpec
    target_tenant_id: str
    target_app_object_id: str | None
    user_type: str = "Member"
    redirect_url: str | None = None
    quarantine: QuarantinePolicy = field(default_factory=QuarantinePolicy)  # the target's, from its policy
    config_args: tuple[str, ...] = ()  # `--config PATH` for printed commands (xts_pipeline.paths.config_args)


@dataclass
class ApplyResult:
    """Outcome counts of one apply, in our action words and Entra's statuses."""

    pair_key: str
    cycle_id: str | None
    blocked_reason: str | None = None
    counts: dict[str, int] = field(default_factory=dict)  # "create/Success" -> n
    failures: list[dict] = field(default_factory=list)
    reconciled: int = 0
    pending_links: int = 0  # target users we know (invited or reconciled) whose link PATCH has not landed yet
    already_applied: bool = False  # the stored plan was applied before: nothing was sent again
    writes: int = 0  # outcomes of Graph writes this apply (Entra's "events" for quarantine)
    write_failures: int = 0
    reference_failures: int = 0  # failed manager writes: Entra leaves them out of the 40 % / 40,000 rules
    auth_failures: int = 0
    quarantine: str | None = None  # the pair's quarantine status after this apply, when it is quarantined

    def count(self, operation: str, status: str | None = None) -> int:
        return sum(v for k, v in self.counts.items()
                   if k.split("/")[0] == operation and (status is None or k.split("/")[1] == status))


def _load(db, pair_key: str) -> tuple[dict | None, list[dict], dict[str, str], list[dict]]:
    with store.connect(db) as con:
        pm = plan_meta.read(con, pair_key)
        meta = None if pm is None else {"cycle_id": pm.cycle_id, "fingerprint": pm.fingerprint,
                                        "sync_allowed": pm.sync_allowed, "blocked_reason": pm.blocked_reason}
        cur = con.execute(
            queries.load("apply/plan_rows"), [pair_key])
        cols = [c[0] for c in cur.description]
        rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
        excl = dict(con.execute(queries.load("apply/holds"), [pair_key]).fetchall())
        inflight = journal.in_flight(con, pair_key)
    for r in rows:
        r["changes"] = orjson.loads(r["changes"] or "[]")
        r["desired"] = orjson.loads(r["desired"]) if r["desired"] else {}
    return meta, rows, excl, inflight


def _entry(ctx: ApplyContext, cycle_id: str, row: dict, status: str, **kw: Any) -> LogEntry:
    return _pair_entry(ctx.pair, cycle_id, row, status, **kw)


def _pair_entry(pair: PairSpec, cycle_id: str, row: dict, status: str, **kw: Any) -> LogEntry:
    return LogEntry(
        cycle_id=cycle_id, change_id=row["change_id"], pair_key=pair.key,
        operation=row.get("log_op") or row["action"],
        status=status, source_tenant_id=row.get("source_tenant_id"), source_object_id=row.get("source_object_id"),
        source_upn=row.get("user_principal_name"), target_tenant=pair.target,
        target_user_id=kw.pop("target_user_id", row.get("target_user_id")),
        modified_properties=row.get("changes") or [], reason=kw.pop("reason", row.get("reason")), **kw)


def _log_only(db, entries: list[LogEntry]) -> None:
    with store.connect(db) as con:
        write_log(con, entries)


def _tally(result: ApplyResult, entries: Iterable[LogEntry]) -> None:
    from xts_pipeline.provisioning_log import ENTRA_STATUS

    for e in entries:
        key = f"{e.operation}/{ENTRA_STATUS[e.status]}"
        result.counts[key] = result.counts.get(key, 0) + 1
        if e.status == "failed" and len(result.failures) < 50:
            result.failures.append({"change_id": e.change_id, "operation": e.operation,
                                    "source_object_id": e.source_object_id, "target_user_id": e.target_user_id,
                                    "error_code": e.error_code, "error_message": e.error_message})


def _count_write(result: ApplyResult, status: str, code: str | None, http_status: int | None,
                 credential: bool | None = None, reference: bool = False) -> None:
    """Count one write outcome for quarantine: all of them, the failed ones, and those refused for auth.

    `credential` is the writer's verdict (token or app permission refused); a per-user 400/403 inside a
    batch is that user's own failure, not the pair's credentials. `reference`: a manager write, which
    Entra leaves out of the 40 % / 40,000 rules."""
    result.writes += 1
    if status == "failed":
        result.write_failures += 1
        result.reference_failures += int(reference)
        if credential if credential is not None else (code in _AUTH_CODES or http_status in (401, 403)):
            result.auth_failures += 1


def applied_values(row: dict) -> dict[str, Any]:
    """What a successful write of `row` put on the target user, per property (the three-way diff's base).

    A create or an adoption wrote every desired property (the target now holds them all); an update or a
    disable wrote its changes; a restore's attributes follow in its own update. The manager is a reference
    resolved separately and is not part of it.
    """
    if row["action"] in ("create", "adopt"):
        values = dict(row.get("desired") or {})
        values.update({c["property"]: c["new"] for c in row.get("changes") or []})
    elif row["action"] in ("update", "disable"):
        values = {c["property"]: c["new"] for c in row.get("changes") or []}
    else:
        return {}
    values.pop("manager", None)
    return values


def record_applied(con, pair_key: str, row: dict) -> None:
    """Merge the properties a successful write set into links.applied (a JSON null there means "cleared")."""
    values = applied_values(row)
    if not values or not row.get("source_object_id"):
        return
    journal.record_applied(con, pair_key, row["source_object_id"], _keep_nulls(values))


def _keep_nulls(values: dict[str, Any]) -> dict[str, Any]:
    """json_merge_patch deletes a key patched with null; a cleared value is recorded as [] or "" instead."""
    return {k: ("" if v is None else v) for k, v in values.items()}


def build_ops(ctx: ApplyContext, rows: list[dict], names: dict[str, str], write_op: Callable[..., Any]) -> list[Any]:
    """WriteOps for the plan rows (restores get their attribute patch in a second pass)."""
    ops = []
    for r in rows:
        a = r["action"]
        sid = r.get("source_object_id")
        lf = journal.lookup_filter(names["xtsSourceObjectId"], sid) if sid else None
        if a == "create":
            desired = {k: v for k, v in r["desired"].items()
                       if v is not None and k not in journal.NOT_PATCHED_ON_CREATE}
            invitation = {
                "invitedUserEmailAddress": r["mail"],
                "invitedUserDisplayName": r["desired"].get("displayName") or r.get("user_principal_name"),
                "inviteRedirectUrl": ctx.redirect_url
                or f"https://myapplications.microsoft.com/?tenantid={ctx.target_tenant_id}",
                "sendInvitationMessage": False,
                "invitedUserType": ctx.user_type,
            }
            ops.append(write_op(op_id=r["change_id"], kind="create", user_id=None, invitation=invitation,
                                patch=desired, lookup_filter=lf))
        elif r.get("match") == "manager":
            new = next(c["new"] for c in r["changes"] if c["property"] == "manager")
            ops.append(write_op(op_id=r["change_id"], kind="manager", user_id=r["target_user_id"], invitation=None,
                                patch=None, lookup_filter=None, manager_id=new))
        elif a in ("update", "disable", "adopt"):  # adopt: one PATCH with the link + the mapped attributes
            # A collection is cleared with [], not null (Graph refuses null for businessPhones & co.);
            # a null over a null is no change at all. The manager is a reference, written in its own pass.
            patch = {c["property"]: ([] if c["new"] is None and isinstance(c["old"], list) else c["new"])
                     for c in r["changes"] if not (c["new"] is None and c["old"] is None)
                     and c["property"] != "manager"}
            if not patch:
                continue  # only the manager changed: manager_refs writes it
            ops.append(write_op(op_id=r["change_id"], kind="update", user_id=r["target_user_id"], invitation=None,
                                patch=patch, lookup_filter=None))
        elif a == "delete":
            ops.append(write_op(op_id=r["change_id"], kind="delete", user_id=r["target_user_id"], invitation=None,
                                patch=None, lookup_filter=None))
        elif a == "restore":
            ops.append(write_op(op_id=r["change_id"], kind="restore", user_id=r["target_user_id"], invitation=None,
                                patch=None, lookup_filter=lf))
    return ops


def _rename_link_keys(rows: list[dict], planned: dict[str, str], actual: dict[str, str]) -> None:
    """If the registered extension names differ from the planned ones, patch the registered names."""
    renames = {planned[k]: actual[k] for k in LINK_EXTENSIONS if planned.get(k) and planned[k] != actual.get(k)}
    if not renames:
        return
    for r in rows:
        r["desired"] = {renames.get(k, k): v for k, v in r["desired"].items()}
        for c in r["changes"]:
            c["property"] = renames.get(c["property"], c["property"])


def _stream(db, ctx: ApplyContext, cycle_id: str, rows_by_id: dict[str, dict], outcomes: Iterator[Any],
            result: ApplyResult, restore_followups: list[dict], succeeded: list[dict] | None = None) -> None:
    """Record outcomes as they arrive, flushing in short connections between network waits."""
    buf: list[tuple[dict, Any]] = []
    last = time.monotonic()

    def flush() -> None:
        nonlocal last
        if not buf:
            return
        lease.check(f"pair:{ctx.pair.key}")  # taken over by another cycle: stop before recording more as ours
        entries = []
        with store.connect(db) as con:
            con.execute("BEGIN")
            for row, out in buf:
                status = out.status
                code, msg = out.error_code, out.error_message
                if status == "failed" and row["action"] == "delete" and code in ("Request_ResourceNotFound",
                                                                                "ResourceNotFound", "404"):
                    status, code, msg = "success", None, None  # already gone: the delete's goal holds
                tid = out.target_id or row.get("target_user_id")
                _count_write(result, status, code, out.http_status, getattr(out, "credential_failure", None),
                             reference=row.get("match") == "manager")
                reason = row.get("reason")
                logged = status
                if status == "success":
                    if succeeded is not None:
                        succeeded.append({**row, "target_user_id": tid})
                    if row["action"] == "delete":
                        journal.record_link(con, ctx, row.get("source_object_id"), tid, "deleted")
                    elif row["action"] == "manager":
                        record_manager(con, ctx, row)
                    elif journal.writes_link(row):
                        journal.record_link(con, ctx, row.get("source_object_id"), tid, "active")
                    record_applied(con, ctx.pair.key, row)
                    if row["action"] == "restore" and row["desired"]:
                        restore_followups.append({**row, "action": "update", "target_user_id": tid,
                                                  "change_id": row["change_id"] + ":patch"})
                elif (status == "failed" and row["action"] == "create" and out.target_id
                      and code not in _EXISTING_USER_CODES):
                    # The invitation executed (Graph gave us the user) but the PATCH with attributes and link
                    # did not land: not a Failure of the create, a pending link the next cycle completes.
                    journal.record_link(con, ctx, row.get("source_object_id"), tid, "pending")
                    logged = "warning"
                    reason = (f"{journal.PENDING_REASON}: invited user {tid} exists; writing its attributes and "
                              f"link failed ({code}); the next cycle completes it")
                    result.pending_links += 1
                elif status == "failed" and row.get("log_op") == "create":
                    # Completing an invited user failed: still a pending link, completed by a later cycle.
                    logged = "warning"
                    reason = (f"{journal.PENDING_REASON}: completing invited user {tid} failed ({code}); the "
                              f"next cycle completes it")
                    result.pending_links += 1
                journal.finish(con, ctx.pair.key, row["change_id"], status == "success", tid)
                entries.append(_entry(ctx, cycle_id, row, logged, target_user_id=tid, error_code=code,
                                      error_message=msg, duration_ms=out.duration_ms, reason=reason))
            write_log(con, entries)
            con.execute("COMMIT")
        _tally(result, entries)
        buf.clear()
        last = time.monotonic()

    for out in outcomes:
        buf.append((rows_by_id[out.op_id], out))
        if len(buf) >= FLUSH_EVERY or time.monotonic() - last > FLUSH_SECONDS:
            flush()
    flush()


def _held_entries(pair: PairSpec, cycle_id: str, rows: list[dict], excluded: dict[str, str],
                  reason: str) -> list[LogEntry]:
    """Skipped entries for every planned write of a cycle that may not write.

    Users a per-user guardrail removed keep their own reason; deletes and disables are Entra's
    StagedDelete (held until an admin allows them), the rest keep their own action word.
    """
    out = []
    for r in rows:
        if r["action"] == "skip":
            continue
        held = r["change_id"] in excluded
        why = f"held by {excluded[r['change_id']]}" if held else f"blocked: {reason}"
        staged = "StagedDelete" if r["action"] in _REMOVALS else None
        out.append(_pair_entry(pair, cycle_id, r, "skipped", reason=why, entra_action=staged,
                               hold="held" if held else "blocked"))
    return out


def log_blocked(db: str | Path | None, pair: PairSpec, reason: str) -> int:
    """Log every planned write of the pair's current plan as held (Skipped / StagedDelete) with `reason`.

    Called by the guarded-plan step when the guardrails stop a pair (Dagster then skips apply in that
    run), and by apply when it refuses. Idempotent per cycle: a second call replaces the first one's entries.
    """
    meta, rows, excluded, _ = _load(db, pair.key)
    if meta is None:
        return 0
    entries = _held_entries(pair, meta["cycle_id"], rows, excluded, reason)
    with store.connect(db) as con:
        con.execute("BEGIN")
        drop_held(con, pair.key, meta["cycle_id"])
        write_log(con, entries)
        con.execute("COMMIT")
    return len(entries)


def _after_apply(db, ctx: ApplyContext, result: ApplyResult, detail: str = "", credentials: bool = False) -> None:
    """Entra's quarantine bookkeeping for this apply: enter, back off, or release after a good retry."""
    failed_auth = credentials or (result.write_failures > 0 and result.auth_failures == result.writes)
    stats = quarantine.ApplyStats(result.writes, result.write_failures, failed_auth, detail,
                                  reference_failures=result.reference_failures)
    with store.connect(db) as con:
        state = quarantine.after_apply(con, ctx.pair.key, stats, ctx.quarantine)
    if state is not None and state.active:
        shown = shown_pair(ctx.pair.key)
        when = f"next retry at {state.next_retry_at:%Y-%m-%d %H:%M} UTC" if state.next_retry_at else "disabled"
        result.quarantine = (f"pair {shown} is quarantined ({state.reason}); {when}; scheduled runs skip it "
                             f"until then. Fix the cause, then run `{paths.release_command(shown, ctx.config_args)}`")


def apply_pair(db: str | Path | None, ctx: ApplyContext, client: Any, *, blocked_by: Iterable[str] = (),
               writer: Any = None) -> ApplyResult:
    """Execute the stored plan of `ctx.pair`; every outcome lands in `provisioning_log`.

    `blocked_by` lists what stops the pair (the guarded plan's verdicts, read from the store by the caller): with any, or with the
    target's isSyncAllowed false, nothing is written and every planned write is logged as Skipped.
    After writing, the pair's quarantine is updated from the outcomes (ctx.quarantine); credentials the
    target refuses quarantine the pair at once and raise PairQuarantinedError.
    """
    from xts_pipeline.graph.errors import AuthError, PermissionError_

    meta, rows, excluded, inflight = _load(db, ctx.pair.key)
    if meta is None:
        raise RuntimeError(f"pair {ctx.pair.key}: no plan in the staging database; materialize the plan first")
    cycle_id = meta["cycle_id"]
    result = ApplyResult(pair_key=ctx.pair.key, cycle_id=cycle_id)
    if not inflight and _applied_before(db, ctx.pair.key, cycle_id):
        # Applying one plan twice would send every write twice: a new cycle re-plans first.
        result.already_applied = True
        return result
    blocks = list(blocked_by)
    problems = consistency_problems(db, ctx.pair)
    if problems:
        blocks.append(f"plan {ctx.pair.key} is inconsistent ({problems[0][0]}: {problems[0][1]}, "
                      f"{len(problems)} problem(s)); re-run the plan after fixing the source or target data")
    if meta["blocked_reason"]:
        blocks.insert(0, meta["blocked_reason"])
    if blocks:
        result.blocked_reason = "; ".join(blocks)
        log_blocked(db, ctx.pair, result.blocked_reason)
        _tally(result, _held_entries(ctx.pair, cycle_id, rows, excluded, result.blocked_reason))
        return result
    skipped = [_entry(ctx, cycle_id, r, "skipped") for r in rows if r["action"] == "skip"]
    skipped += [_entry(ctx, cycle_id, r, "skipped", reason=f"held by {excluded[r['change_id']]}", hold="held")
                for r in rows if r["action"] != "skip" and r["change_id"] in excluded]
    todo = [r for r in rows if r["action"] != "skip" and r["change_id"] not in excluded]
    skipped += drift_entries(db, ctx.pair, cycle_id)
    if skipped:
        _log_only(db, skipped)
        _tally(result, skipped)
    try:
        finished = set(journal.reconcile(db, ctx, client, inflight, todo, cycle_id, result))
        todo = [r for r in todo if r["change_id"] not in finished]
        if todo or journal.new_users(db, ctx, cycle_id):
            _write(db, ctx, client, cycle_id, todo, result, writer)
    except (AuthError, PermissionError_) as exc:
        _after_apply(db, ctx, result, detail=str(exc), credentials=True)
        raise PairQuarantinedError(result.quarantine or str(exc)) from exc
    if todo:
        _after_apply(db, ctx, result, detail=_first_failure(result))
    _mark(db, ctx)
    return result


def _write(db, ctx: ApplyContext, client: Any, cycle_id: str, todo: list[dict], result: ApplyResult,
           writer: Any) -> None:
    """Journal, send and record the plan's writes (restores get their attribute patch in a second round)."""
    from xts_pipeline.graph.writer import BatchWriter, WriteOp

    with store.connect(db) as con:
        planned = dict(con.execute(queries.load("apply/extensions"),
                                   [ctx.pair.target]).fetchall())
    if ctx.target_app_object_id:
        names = client.ensure_extensions(ctx.target_app_object_id, list(LINK_EXTENSIONS))
        _rename_link_keys(todo, planned, names)
    else:
        names = planned
    ops = build_ops(ctx, todo, names, WriteOp)
    journal.record_in_flight(db, ctx, cycle_id, todo, ops)
    bw = writer or BatchWriter(client)
    followups: list[dict] = []
    done: list[dict] = []
    _stream(db, ctx, cycle_id, {r["change_id"]: r for r in todo}, iter(bw.run(ops)), result, followups, done)
    if followups:
        ops2 = build_ops(ctx, followups, names, WriteOp)
        journal.record_in_flight(db, ctx, cycle_id, followups, ops2)
        _stream(db, ctx, cycle_id, {r["change_id"]: r for r in followups}, iter(bw.run(ops2)), result, [])
    sent = {op.op_id for op in ops}
    refs = manager_refs(db, ctx, cycle_id, [r for r in todo if r["change_id"] not in sent], done)
    if refs:
        ops3 = build_ops(ctx, refs, names, WriteOp)
        journal.record_in_flight(db, ctx, cycle_id, refs, ops3)
        _stream(db, ctx, cycle_id, {r["change_id"]: r for r in refs}, iter(bw.run(ops3)), result, [])


def drift_entries(db, pair: PairSpec, cycle_id: str) -> list[LogEntry]:
    """One Warning per user whose target no longer holds what this pair last wrote (planner's plan_drift).

    Entra never looks at the target; we report what changed there, and leave it unless `drift: repair`.
    """
    with store.connect(db) as con:
        rows = con.execute(
            queries.load("apply/drift"),
            [pair.key]).fetchall()
    out = []
    for sid, tid, repaired, props in rows:
        changes = [{"property": p["property"], "old": orjson.loads(p["old"]) if p["old"] else None,
                    "new": orjson.loads(p["new"]) if p["new"] else None} for p in props]
        why = ("drift repaired (drift: repair): the target's value differed from what this pair last wrote"
               if repaired else "drift: the target's value differs from what this pair last wrote; left as "
               "the target set it (Entra: target edits persist until the source changes; drift: repair rewrites it)")
        out.append(LogEntry(cycle_id=cycle_id, change_id=f"{cycle_id}:{sid}:drift", pair_key=pair.key,
                            operation="drift", status="warning", source_tenant_id=pair.source_tenant_id,
                            source_object_id=sid, target_tenant=pair.target, target_user_id=tid,
                            modified_properties=changes, reason=why))
    return out


def _first_failure(result: ApplyResult) -> str:
    return str(result.failures[0].get("error_message") or "") if result.failures else ""


def _applied_before(db, pair_key: str, cycle_id: str) -> bool:
    with store.connect(db) as con:
        wm = store.get_watermark(con, f"applied:{pair_key}")
    return wm is not None and wm[1] == cycle_id


def _mark(db, ctx: ApplyContext) -> None:
    """Only after every outcome is recorded: a killed apply leaves the next plan to cover all it missed."""
    with store.connect(db) as con:
        con.execute("BEGIN")
        mark_applied(con, ctx.pair.key)
        pm = plan_meta.read(con, ctx.pair.key)
        if pm is not None:
            store.set_watermark(con, f"applied:{ctx.pair.key}", datetime.now(UTC).replace(tzinfo=None), pm.cycle_id)
        con.execute("COMMIT")
