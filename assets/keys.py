"""The sync graph's asset keys, in a module of their own: the cycle runner and the observations name them
without importing the assets (and the step libraries those import)."""

from __future__ import annotations

import dagster as dg

RAW = dg.AssetKey("raw_source_users")
STAGED = dg.AssetKey("staged_source_users")
SNAPSHOT = dg.AssetKey("target_snapshot")
DESIRED = dg.AssetKey("desired_state")
PLAN = dg.AssetKey("provisioning_plan")
GUARDED = dg.AssetKey("guarded_plan")  # assets/guarded_plan.py
APPLIED = dg.AssetKey("applied_changes")
