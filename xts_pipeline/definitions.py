"""Dagster definitions — the only module in xts_pipeline that imports dagster (placeholder until issue 5)."""

import dagster as dg

defs = dg.Definitions(assets=[])
