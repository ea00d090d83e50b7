"""A snapshot of the Dagster definitions for a two-tenant topology.

What a user sees in the UI (asset keys and their lineage, checks and whether they block, jobs and what
they select, schedules, sensors, resources) changes only on purpose: a move of code that changes any of
it fails here. When the change is intended, regenerate the snapshot and review its diff:

    XTS_UPDATE_SNAPSHOT=1 .venv/bin/python -m pytest tests/test_definitions_snapshot.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg

from assets.definitions import build_definitions
from tests.two_tenants import TWO
from tests.two_tenants import write_topology as _write

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions_two_tenants.json"


def describe(d: dg.Definitions) -> dict:
    """The definitions as plain, sorted data: only what a user or an operator relies on."""
    graph = d.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        parts = node.partitions_def
        assets[key.to_user_string()] = {
            "deps": sorted(p.to_user_string() for p in node.parent_keys),
            "partitions": sorted(parts.get_partition_keys()) if parts else None,
            "materializable": node.is_materializable,
            "group": node.group_name,
        }
    checks = {}
    for ck in sorted(graph.asset_check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name)):
        spec = graph.get_check_spec(ck)
        checks[f"{ck.asset_key.to_user_string()}:{ck.name}"] = {"blocking": spec.blocking}
    jobs = {}
    for job in sorted(d.resolve_all_job_defs(), key=lambda j: j.name):
        if job.name.startswith("__"):
            continue  # Dagster's implicit asset job
        jobs[job.name] = {"assets": sorted(k.to_user_string() for k in job.asset_layer.executable_asset_keys),
                          "tags": dict(sorted(job.tags.items()))}
    schedules = {s.name: {"cron": s.cron_schedule, "job": s.job_name, "default": s.default_status.value}
                 for s in sorted(d.schedules or [], key=lambda s: s.name)}
    sensors = {s.name: {"jobs": sorted(j.name for j in s.jobs), "default": s.default_status.value}
               for s in sorted(d.sensors or [], key=lambda s: s.name)}
    return {"assets": assets, "checks": checks, "jobs": jobs, "schedules": schedules, "sensors": sensors,
            "resources": sorted(d.resources or {})}


def test_definitions_match_the_snapshot(tmp_path):
    got = describe(build_definitions(_write(tmp_path, TWO), duckdb_path=tmp_path / "x.duckdb"))
    text = json.dumps(got, indent=2, sort_keys=True) + "\n"
    if os.environ.get("XTS_UPDATE_SNAPSHOT") == "1":
        SNAPSHOT.write_text(text)
    assert SNAPSHOT.exists(), f"{SNAPSHOT} is missing: run with XTS_UPDATE_SNAPSHOT=1 to write it"
    want = json.loads(SNAPSHOT.read_text())
    assert got == want, (f"the definitions differ from {SNAPSHOT}; if that is intended, regenerate it "
                         "(XTS_UPDATE_SNAPSHOT=1, see this module's docstring) and review the diff")
