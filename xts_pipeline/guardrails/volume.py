"""Pair-wide caps: how many users one cycle may add, change or remove (the 80,000-into-500 flood).

Per cycle and per pair (creates, updates, B2B users per source), and per *target* over time: creates from
every source within a rolling window (provisioning log + other pairs' pending plans + this plan), and the
target's external users after this plan relative to its internal members. A flood paced under the
per-cycle cap, or split across sources, meets the window and total caps. Each check reports every limit it
tested, so the metadata shows count against limit even when it passes; a breach names the exact approve
command.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import islice
from typing import Any

from .policy import InboundPolicy
from .report import MAX_OFFENDERS, GuardrailResult, severity_for
from .rows import ADDING_ACTIONS, REMOVING_ACTIONS, user_ref


def creates_limit(policy: InboundPolicy, target_size: int) -> tuple[int, str]:
    """The effective per-cycle create limit and which clause set it (the lower of abs and %)."""
    vol = policy.volume
    limit, why = vol.max_creates_per_cycle, f"max_creates_per_cycle={vol.max_creates_per_cycle}"
    if vol.max_creates_pct_of_target is not None:
        pct = max(math.floor(target_size * vol.max_creates_pct_of_target / 100), vol.pct_floor)
        if pct < limit:
            limit = pct
            why = (f"max_creates_pct_of_target={vol.max_creates_pct_of_target:g}% of {target_size} target users "
                   f"(at least pct_floor={vol.pct_floor})")
    return limit, why


@dataclass(frozen=True)
class TargetVolume:
    """What the target already took, from every pair into it (read by inputs.py)."""

    window_creates: int = 0  # successful creates/restores logged in the window (approved cycles not counted)
    pending_other: int = 0  # creates/restores planned by other pairs into the target, not yet applied or held
    internal_members: int = 0
    external_users: int = 0  # B2B users of the target now, from any source


def window_limit(policy: InboundPolicy, members: int) -> tuple[int | None, str]:
    vol = policy.volume
    options: list[tuple[int, str]] = []
    if vol.max_creates_per_window is not None:
        options.append((vol.max_creates_per_window, f"max_creates_per_window={vol.max_creates_per_window}"))
    if vol.max_creates_window_pct_of_members is not None:
        pct = max(math.floor(members * vol.max_creates_window_pct_of_members / 100), vol.window_floor)
        options.append((pct, f"max_creates_window_pct_of_members={vol.max_creates_window_pct_of_members:g}% of "
                             f"{members} internal members (at least window_floor={vol.window_floor})"))
    return min(options) if options else (None, "")


def b2b_limit(policy: InboundPolicy, members: int) -> int | None:
    vol = policy.volume
    if vol.max_b2b_pct_of_members is None:
        return None
    return max(math.floor(members * vol.max_b2b_pct_of_members / 100), vol.b2b_floor)


def _pair_result(name: str, action: str, exceeded: list[tuple[str, int, int]], tested: list[tuple[str, int, int]],
                 offenders: list[dict[str, Any]], pair: str, advice: str) -> GuardrailResult:
    passed = not exceeded
    head = exceeded[0] if exceeded else (tested[0] if tested else ("", 0, 0))
    if passed:
        message = f"{name}: {pair} within limits: " + "; ".join(f"{c} of {lim} ({w})" for w, c, lim in tested)
    else:
        message = (f"{name}: {pair} plan exceeds " + "; ".join(f"{w}: {c} > {lim}" for w, c, lim in exceeded)
                   + f". {advice}")
    return GuardrailResult(
        name=name, passed=passed, severity=severity_for(action), scope="pair",
        offenders=tuple(offenders[:MAX_OFFENDERS]), rule="; ".join(w for w, _, _ in tested),
        count=head[1], limit=head[2], message=message, blocks_cycle=True,
    )


def check_volume(
    rows: Iterable[Mapping[str, Any]],
    policy: InboundPolicy,
    target_size: int,
    existing_from_source: int,
    pair: str = "",
    target: TargetVolume | None = None,
    held: Iterable[str] = (),
    approve: str = "`xts approve`",
) -> GuardrailResult:
    """Creates (incl. restores) per cycle, abs and % of target size; B2B users from this source; updates;
    and, when `target` is given, the target's rolling window and B2B total across every pair.

    `target_size` is the target's current user count; `existing_from_source` how many target users are
    already linked to this pair's source; `held` source object ids a per-user guardrail holds (never
    written, so not counted); `approve` the exact approve command for the message.
    """
    out = {str(h) for h in held}
    rows = [r for r in rows if str(r.get("source_object_id")) not in out] if out else list(rows)
    counts = Counter(r.get("action") for r in rows)
    adds = sum(counts[a] for a in ADDING_ACTIONS)
    adopts = counts["adopt"]  # existing users bound to this source: writes on them, and B2B users of the source
    vol = policy.volume
    climit, cwhy = creates_limit(policy, target_size)
    with_adopts = f" (updates and {adopts} adoptions)" if adopts else ""
    tested = [(cwhy, adds, climit), (f"max_updates_per_cycle={vol.max_updates_per_cycle}{with_adopts}",
                                     counts["update"] + adopts, vol.max_updates_per_cycle)]
    if vol.max_b2b_users_per_source is not None:
        adopted = f" + {adopts} adopted" if adopts else ""
        tested.append((f"max_b2b_users_per_source={vol.max_b2b_users_per_source} (existing {existing_from_source} "
                       f"+ {adds} new{adopted})", existing_from_source + adds + adopts,
                       vol.max_b2b_users_per_source))
    if target is not None and adds:
        wlimit, wwhy = window_limit(policy, target.internal_members)
        if wlimit is not None:
            total = target.window_creates + target.pending_other + adds
            tested.append((f"{wwhy}: creates into the target from every source in the last {vol.window_hours:g} h "
                           f"(logged {target.window_creates} + other pairs' pending {target.pending_other} + this "
                           f"plan {adds})", total, wlimit))
        blimit = b2b_limit(policy, target.internal_members)
        if blimit is not None:
            tested.append((f"max_b2b_pct_of_members={vol.max_b2b_pct_of_members:g}% of {target.internal_members} "
                           f"internal members (at least b2b_floor={vol.b2b_floor}): B2B users of the target from "
                           f"every source ({target.external_users} now + {target.pending_other} pending + {adds} new)",
                           target.external_users + target.pending_other + adds, blimit))
    exceeded = [t for t in tested if t[1] > t[2]]
    shown = ADDING_ACTIONS | {"update", "adopt"}
    sample = [user_ref(r) for r in islice((r for r in rows if r.get("action") in shown), MAX_OFFENDERS)] \
        if exceeded else []
    return _pair_result("volume", policy.on_violation.volume, exceeded, tested, sample, pair,
                        "Nothing is written for this pair: narrow the source's scope, raise the limit in the "
                        f"target's inbound policy, or approve this exact plan with {approve}")


def check_deletions(
    rows: Iterable[Mapping[str, Any]],
    policy: InboundPolicy,
    existing_from_source: int,
    pair: str = "",
) -> GuardrailResult:
    """Entra's accidental-deletion threshold: disables and deletes count together, abs and optional %."""
    rows = list(rows)
    removing = [r for r in rows if r.get("action") in REMOVING_ACTIONS]
    dele = policy.deletions
    tested = [(f"deletions.threshold={dele.threshold} (disables + deletes)", len(removing), dele.threshold)]
    if dele.threshold_pct is not None:
        pct = math.floor(existing_from_source * dele.threshold_pct / 100)
        tested.append((f"deletions.threshold_pct={dele.threshold_pct:g}% of {existing_from_source} synced users",
                       len(removing), pct))
    exceeded = [t for t in tested if t[1] > t[2]]
    return _pair_result("deletions", policy.on_violation.deletions, exceeded, tested,
                        [user_ref(r) for r in removing[:MAX_OFFENDERS]] if exceeded else [], pair,
                        "Nothing is written for this pair: check why the source removed so many users from scope, "
                        "then approve this exact plan with `xts approve` if the removals are intended")
