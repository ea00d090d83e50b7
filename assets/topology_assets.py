"""Tenants and pairs as assets of their own, generated from the topology: the lineage says who feeds whom.

The sync assets are one chain partitioned by tenant and pair, so their graph is the same for every pair
(raw -> staged -> desired -> plan -> apply). These external assets add what the topology means: one
asset per Entra tenant (group "tenants") and one per pair (group "pairs") that depends on its source and
target tenant, so the graph reads `tenant/contoso -> pair/contoso__fabrikam <- tenant/fabrikam`. A pair
asset is "materialized" by applied_changes at the end of every apply, with that cycle's counts and
status, so its page shows each pair's history, one pair per asset (docs/pipeline.md says why we chose
this over per-pair copies of the whole chain).
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from assets.keys import RAW, SNAPSHOT

OWNERS_ENV = "XTS_OWNERS"  # comma-separated Dagster owners (emails or team:name) for every asset
DEFAULT_OWNERS = ("team:identity",)


def owners() -> list[str]:
    raw = os.environ.get(OWNERS_ENV, "")
    return [o.strip() for o in raw.split(",") if o.strip()] or list(DEFAULT_OWNERS)


def tenant_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["tenant", name])


def pair_key(pair_key_: str) -> dg.AssetKey:
    return dg.AssetKey(["pair", pair_key_])


def _tag(value: str) -> str:
    """A Dagster tag value (letters, digits, '-', '_', '.'; 63 characters at most)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in value)[:63]


def build_topology_specs(topology: Any) -> list[dg.AssetSpec]:
    """One external asset per tenant in an enabled pair, one per enabled pair depending on both tenants."""
    pairs = [p for p in topology.pairs() if p.enabled]
    names = sorted({p.source for p in pairs} | {p.target for p in pairs})
    specs = []
    for name in names:
        t = topology.tenant(name)
        roles = sorted(topology.roles(name))
        specs.append(dg.AssetSpec(
            tenant_key(name), group_name="tenants", kinds={"azure"}, owners=owners(),
            description=f"Entra tenant {name} ({t.domain}): {' and '.join(roles)} in this topology",
            tags={"xts/tenant": _tag(name), **{f"xts/{r}": "" for r in roles}},
            metadata={"tenant_id": t.tenant_id, "domain": t.domain, "roles": ", ".join(roles)}))
    for p in pairs:
        specs.append(dg.AssetSpec(
            pair_key(p.key), group_name="pairs", kinds={"azure"}, owners=owners(),
            deps=[tenant_key(p.source), tenant_key(p.target)],
            description=f"{p.name}: {p.source}'s internal members as B2B users in {p.target}; recorded by each "
                        "apply of this pair (counts and status of that cycle)",
            tags={"xts/source": _tag(p.source), "xts/target": _tag(p.target), "xts/pair": _tag(p.key)},
            metadata={"pair": p.name, "partition": p.key}))
    return specs


def probe_observation(verdict: Any, cycle: str) -> dg.AssetObservation:
    """What a tenant side's asset partition shows for a cycle that did not run it (xts_pipeline.probe.SideVerdict):
    the change probe read Graph and found nothing any pair needs a run for."""
    return dg.AssetObservation(asset_key=RAW if verdict.side == "source" else SNAPSHOT, partition=verdict.tenant,
                               metadata={"status": "no run needed (change probe)", "cycle": cycle,
                                         "probe": verdict.reason, "delta_items": verdict.items,
                                         "ignored_items": verdict.ignored})


def unchanged_observation(decision: Any, cycle: str) -> dg.AssetObservation:
    """What the pair's asset shows for a cycle that skipped its run (xts_pipeline.unchanged.Decision): the
    cycle, why, and the fingerprint, so the UI says why no run happened."""
    return dg.AssetObservation(asset_key=pair_key(decision.pair_key), metadata={
        "status": "unchanged (skipped)", "cycle": cycle, "reason": decision.reason,
        "inputs_fingerprint": decision.fingerprint, "last_clean_run": decision.recorded_run,
        "last_clean_cycle": decision.recorded_cycle})
