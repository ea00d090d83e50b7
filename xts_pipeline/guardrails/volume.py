"""Pair-wide caps: how many users one cycle may add, change or remove (the 80,000-into-500 flood).

Each check reports every limit it tested, so the metadata shows count against limit even when it passes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
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
) -> GuardrailResult:
    """Creates (incl. restores) per cycle, abs and % of target size; B2B users from this source; updates.

    `target_size` is the target's current user count; `existing_from_source` how many target users are
    already linked to this pair's source.
    """
    rows = list(rows)
    counts = Counter(r.get("action") for r in rows)
    adds = sum(counts[a] for a in ADDING_ACTIONS)
    vol = policy.volume
    climit, cwhy = creates_limit(policy, target_size)
    tested = [(cwhy, adds, climit), (f"max_updates_per_cycle={vol.max_updates_per_cycle}", counts["update"],
                                     vol.max_updates_per_cycle)]
    if vol.max_b2b_users_per_source is not None:
        tested.append((f"max_b2b_users_per_source={vol.max_b2b_users_per_source} (existing {existing_from_source} "
                       f"+ {adds} new)", existing_from_source + adds, vol.max_b2b_users_per_source))
    exceeded = [t for t in tested if t[1] > t[2]]
    sample = [user_ref(r) for r in rows if r.get("action") in ADDING_ACTIONS | {"update"}][:MAX_OFFENDERS]
    return _pair_result("volume", policy.on_violation.volume, exceeded, tested, sample if exceeded else [], pair,
                        "Nothing is written for this pair: narrow the source's scope, raise the limit in the "
                        "target's inbound policy, or approve this exact plan with `xts approve`")


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
