"""Partitions built from the topology when the definitions load.

Static, not dynamic: the config file is the single source of truth, so a tenant or pair added there
appears after a code-location reload, with no sensor to keep in step and no stale keys left behind
when one is removed. One-dimensional keys only: tenant names, and pair keys `source__target`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dagster as dg


@dataclass(frozen=True)
class SyncPartitions:
    sources: dg.StaticPartitionsDefinition
    targets: dg.StaticPartitionsDefinition
    pairs: dg.StaticPartitionsDefinition
    source_to_pairs: dg.StaticPartitionMapping
    target_to_pairs: dg.StaticPartitionMapping


def build_partitions(topology: Any) -> SyncPartitions:
    pairs = [p for p in topology.pairs() if p.enabled]
    sources = sorted({p.source for p in pairs})
    targets = sorted({p.target for p in pairs})
    by_source = {s: sorted(p.key for p in pairs if p.source == s) for s in sources}
    by_target = {t: sorted(p.key for p in pairs if p.target == t) for t in targets}
    return SyncPartitions(
        sources=dg.StaticPartitionsDefinition(sources),
        targets=dg.StaticPartitionsDefinition(targets),
        pairs=dg.StaticPartitionsDefinition(sorted(p.key for p in pairs)),
        source_to_pairs=dg.StaticPartitionMapping(by_source),
        target_to_pairs=dg.StaticPartitionMapping(by_target),
    )
