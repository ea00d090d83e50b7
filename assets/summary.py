"""What a cycle did, per pair: the outcome record, its counts read from the store, and the summary table.

The cycle runner (assets/cycle.py) fills one PairOutcome per pair from its Dagster runs; the apply step
(assets/sync.py) shows the same counts in its metadata. Both read them here, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xts_pipeline import plan_meta, queries, store
from xts_pipeline.vocabulary import shown_pair

SUMMARY_COLUMNS = ("creates", "updates", "disables", "deletes", "restores", "skips", "held", "drift", "failures",
                   "rejected", "mapping_errors")


UNCHANGED = "unchanged (skipped)"


@dataclass
class PairOutcome:
    """What one pair's cycle did, for the summary table and the exit code.

    Words mean one thing: a user is *held* when a per-user guardrail keeps it back (the rest applies);
    a pair is *blocked* when a pair guardrail (or a blocking check) stops its whole plan.
    """

    pair_key: str
    ran: bool = False
    dry_run: bool = False
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SUMMARY_COLUMNS, 0))
    failed_checks: list[str] = field(default_factory=list)  # blocking checks that failed
    errors: list[str] = field(default_factory=list)
    blocked_reason: str = ""
    quarantined: str = ""  # the quarantine status: skipped this cycle, or entered in this run
    fingerprint: str = ""  # the plan's fingerprint (what `xts approve` takes)
    approve_command: str = ""  # set when an approval would let this exact plan through
    held: dict[str, int] = field(default_factory=dict)  # users held by a per-user guardrail, by check
    held_samples: list[str] = field(default_factory=list)  # "upn: guardrail: reason" of the first held users
    not_applied: int = 0  # planned writes a blocked pair did not make
    rejected_samples: list[str] = field(default_factory=list)  # first staging rejects of the source
    mapping_samples: list[str] = field(default_factory=list)  # first mapping errors of the pair
    mapping_all_failed: bool = False  # every in-scope user failed its mapping: an error
    failure_samples: list[str] = field(default_factory=list)  # first failed writes, with Graph's code
    run_id: str = ""  # the pair's Dagster run
    unchanged: str = ""  # why no run was needed: its inputs hash as after its last clean run (xts_pipeline/unchanged.py)

    @property
    def status(self) -> str:
        """error, quarantined, blocked, failed (some writes failed), planned (dry run), unchanged (skipped) or ok."""
        if self.unchanged and not self.errors:
            return UNCHANGED
        if self.quarantined:
            return "quarantined"
        if self.errors or self.mapping_all_failed:
            return "error"
        if self.failed_checks or self.blocked_reason:
            return "blocked"
        if self.counts.get("failures"):
            return "failed"
        return "planned" if self.dry_run else "ok"


_WRITE_ACTIONS = {"create": "creates", "adopt": "creates", "update": "updates", "disable": "disables",
                  "delete": "deletes", "restore": "restores"}
SAMPLES = 3  # first reasons shown per kind in the summary (xts log lists every one)


def _pair_counts(db: str | Path, pair_key: str, source: str, dry_run: bool, o: PairOutcome) -> None:
    """Fill the outcome's counts, holds, rejects, mapping errors and failures from DuckDB.

    A dry run counts the plan (held users apart); a sync counts what the provisioning log says was
    written in the plan's cycle. Both count a manager change of an existing user as an update, as Entra
    logs it, and an adoption as a create of that user's B2B account.
    """
    with store.connect(db) as con:
        o.rejected_samples = [f"{upn or rid}: {reasons}" for rid, upn, reasons in con.execute(
            queries.load("summary/rejected_samples", "assets"),
            [source, SAMPLES]).fetchall()]
        rejected = store.count(con, "rejected_users", "tenant", source)
        errs = store.count(con, "desired_errors", "pair_key", pair_key)
        o.mapping_samples = [f"{upn or sid}: {err}" for sid, upn, err in con.execute(
            queries.load("summary/mapping_error_samples", "assets"), [pair_key, SAMPLES]).fetchall()]
        mapped = store.count(con, "desired_users", "pair_key", pair_key)
        o.mapping_all_failed = bool(errs) and not mapped
        meta = plan_meta.read(con, pair_key)
        o.counts = dict.fromkeys(SUMMARY_COLUMNS, 0)
        o.counts.update(rejected=int(rejected), mapping_errors=int(errs))
        if meta is None:
            return
        cycle, o.blocked_reason, o.fingerprint = meta.cycle_id, meta.blocked_reason or "", meta.fingerprint or ""
        held_rows = con.execute(
            queries.load("summary/held_by_check", "assets"), [pair_key, cycle]).fetchall()
        o.held = {k: int(v) for k, v in held_rows}
        o.held_samples = [f"{upn}: {check}: {reason}" for upn, check, reason in con.execute(
            queries.load("summary/held_samples", "assets"), [pair_key, cycle, SAMPLES]).fetchall()]
        held_users = con.execute(queries.load("summary/held_count", "assets"), [pair_key, cycle]).fetchone()[0]
        planned = dict(con.execute(
            queries.load("summary/planned", "assets"), [pair_key, cycle]).fetchall())
        o.not_applied = sum(int(v) for k, v in planned.items() if k != "skip")
        o.counts.update(skips=int(planned.get("skip", 0)), held=int(held_users))
        # properties of linked users whose target value differs from what the pair last wrote (reported only,
        # unless the pair says drift: repair)
        o.counts["drift"] = int(meta.drift)
        if dry_run:
            for action, col in _WRITE_ACTIONS.items():
                o.counts[col] += int(planned.get(action, 0))
            return
        log = dict(con.execute(
            queries.load("summary/logged", "assets"), [pair_key, cycle]).fetchall())
        # Entra logs a manager reference as part of the user's update: count it as an update unless that
        # user was created or updated in this same cycle (then it is part of that entry).
        manager_updates = con.execute(
            queries.load("summary/manager_updates", "assets"),
            [pair_key, cycle, pair_key, cycle]).fetchone()[0]
        o.failure_samples = [f"{upn or sid}: {op} {code or ''} {msg or ''}".strip() for upn, sid, op, code, msg in
                             con.execute(
            queries.load("summary/failure_samples", "assets"),
            [pair_key, cycle, SAMPLES]).fetchall()]
        # An invited user whose attributes and link failed to write is logged Warning (its invitation
        # executed, so not a failed create), but a write did fail: the status must say so.
        pending_failed = con.execute(
            queries.load("summary/pending_failed", "assets"), [pair_key, cycle]).fetchone()[0]
    for action, col in _WRITE_ACTIONS.items():
        o.counts[col] += int(log.get(f"{action}/Success", 0))
    o.counts["updates"] += int(manager_updates)
    o.counts["failures"] = sum(int(v) for k, v in log.items() if k.endswith("/Failure")) + int(pending_failed)


def format_summary(outcomes: list[PairOutcome], paths: Any = None) -> str:
    """The per-pair summary table the CLI and the demo print, then notes with the first reasons.

    Every command in it is complete (`--config` when one is in use) and quoted for a POSIX shell.
    """
    from tabulate import tabulate

    from xts_pipeline.paths import xts_command

    rows = [[shown_pair(o.pair_key), *[o.counts[c] for c in SUMMARY_COLUMNS], o.status] for o in outcomes]
    text = tabulate(rows, headers=["pair", *SUMMARY_COLUMNS, "status"], tablefmt="github")
    notes = []
    for o in outcomes:
        shown = shown_pair(o.pair_key)

        def note(msg: str, shown: str = shown, notes: list[str] = notes) -> None:
            notes.append(f"  {shown}: {msg.strip().splitlines()[0] if msg.strip() else ''}")

        for msg in [*o.errors, *o.failed_checks]:
            msg = msg.split(". To approve this exact plan:")[0]
            if o.approve_command:  # the command is printed once, below
                msg = msg.replace(f"`{o.approve_command}`", "the command below").replace(o.approve_command,
                                                                                      "the command below")
            note(msg)
        if o.unchanged:
            note(o.unchanged)
        for msg in (o.blocked_reason, o.quarantined):
            if msg:
                note(msg)
        if o.quarantined:
            note(f"to lift the quarantine now: {xts_command(paths, 'release', '--pair', shown)}")
        if o.status == "blocked" and not o.dry_run and o.not_applied:
            note(f"blocked: none of the {o.not_applied} planned write(s) was applied")
        if o.mapping_all_failed:
            note(f"every in-scope user failed its attribute mapping ({o.counts['mapping_errors']}); nothing to sync")
        if o.held:
            note("held by per-user guardrails (logged Skipped with the reason; the rest applies): "
                 + ", ".join(f"{k} {v}" for k, v in o.held.items()))
            notes += [f"    held {s}" for s in o.held_samples]
        for label, samples, count in (("rejected by staging", o.rejected_samples, o.counts["rejected"]),
                                      ("mapping errors", o.mapping_samples, o.counts["mapping_errors"]),
                                      ("failed writes", o.failure_samples, o.counts["failures"])):
            if count:
                note(f"{count} {label}; first: " + " | ".join(s[:160] for s in samples))
        if o.failed_checks and o.fingerprint:
            cmd = xts_command(paths, "approve", "--pair", shown, "--plan", o.fingerprint, "--reason", "...")
            note(f"plan fingerprint {o.fingerprint}" + (f"; to approve it: {cmd}" if o.approve_command else ""))
        if o.counts["rejected"] or o.counts["mapping_errors"] or o.counts["failures"] or o.held:
            note("every entry: " + xts_command(paths, "log", "--pair", shown))
    return text + ("\n" + "\n".join(notes) if notes else "")
