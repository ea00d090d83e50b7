"""Latest status of the blocking checks on a plan partition, read from the Dagster instance.

Dagster's blocking checks only stop downstream steps in the same run. The apply asset calls this so a
plan whose blocking check failed (or never ran on the current plan) cannot be written by
materializing applied_changes on its own. Every blocking check defined on the plan asset counts,
including the guardrail checks other modules add.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import dagster as dg

from xts_pipeline import store


def blocking_check_keys(context: dg.AssetExecutionContext, asset_key: dg.AssetKey,
                        known: Iterable[dg.AssetCheckKey] = ()) -> list[dg.AssetCheckKey]:
    """Blocking checks on `asset_key`: those the definitions declared (`known`) plus any the repository has.

    `known` matters when applied_changes runs in a job that doesn't include the plan's checks (an
    ad-hoc materialization): that job's own asset graph would not list them.
    """
    keys = set(known)
    try:
        graph = context.repository_def.asset_graph
    except Exception:  # noqa: BLE001 - in-process runs (CLI, tests) carry no repository; the job's graph does
        graph = context.op_execution_context.job_def.asset_layer.asset_graph
    keys |= {k for k in graph.get_check_keys_for_assets({asset_key}) if graph.get_check_spec(k).blocking}
    return sorted(keys, key=lambda k: k.name)


def _plan_run(db: str | Path, pair_key: str) -> str | None:
    """The run that materialized the current plan (the planner stores it as the cycle id)."""
    with store.connect(db) as con:
        row = con.execute("SELECT cycle_id FROM plan_meta WHERE pair_key = ?", [pair_key]).fetchone()
    return row[0] if row else None


def _targets_run(record: Any, run_id: str | None) -> bool:
    """Did this evaluation check the plan materialized by `run_id` (same run, or aimed at it later)?"""
    if run_id is None:
        return False
    if record.run_id == run_id:
        return True
    ev = record.evaluation
    target = getattr(ev, "target_materialization_data", None) if ev else None
    return bool(target and target.run_id == run_id)


def _partition_of(instance: dg.DagsterInstance, record: Any) -> str | None:
    if getattr(record, "partition", None):
        return record.partition
    run = instance.get_run_by_id(record.run_id)
    return run.tags.get("dagster/partition") if run else None


def failed_blocking_checks(context: dg.AssetExecutionContext, plan_key: dg.AssetKey, pair_key: str,
                           db: str | Path, known: Iterable[dg.AssetCheckKey] = ()) -> list[str]:
    """Human-readable reasons to refuse applying `pair_key`'s plan; empty when every blocking check passed."""
    instance = context.instance
    cycle_id = _plan_run(db, pair_key)
    reasons: list[str] = []
    for key in blocking_check_keys(context, plan_key, known):
        history = instance.event_log_storage.get_asset_check_execution_history(key, limit=50)
        latest = next((r for r in history if _partition_of(instance, r) == pair_key
                       and r.status.value in ("SUCCEEDED", "FAILED")), None)
        if latest is None or not _targets_run(latest, cycle_id):
            reasons.append(f"check {key.name} has not run on the current plan of {pair_key} (run {cycle_id}); "
                           f"materialize provisioning_plan with its checks before applying")
            continue
        evaluation = latest.evaluation
        if evaluation is None or evaluation.passed:
            continue
        if evaluation.severity == dg.AssetCheckSeverity.ERROR:
            desc = evaluation.description or ""
            reasons.append(f"blocking check {key.name} failed on {pair_key}" + (f": {desc}" if desc else ""))
    return reasons
