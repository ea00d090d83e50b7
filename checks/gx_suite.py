"""Great Expectations 1.x over a DataFrame, for asset checks.

Why not dagster-ge: it pins great_expectations < 1 (and pulls in GX 0.18 + jupyterlab). We call GX Core
directly: an ephemeral context (nothing written to disk), a pandas datasource, a whole-dataframe batch,
and a suite built from gx.expectations.*. `import great_expectations` takes ~5 s, so it happens inside
the check, never when the code location loads; analytics are off because CI has no network.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import Any

import pandas as pd


def validate(df: pd.DataFrame, build: Callable[[Any], list[Any]], name: str) -> tuple[bool, list[dict]]:
    """Run the expectations `build(gx.expectations)` returns over `df`; (success, per-expectation results)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # they would flood the run logs
    suffix = uuid.uuid4().hex[:8]
    source = context.data_sources.add_pandas(name=f"{name}_{suffix}")
    asset = source.add_dataframe_asset(name=f"{name}_frame")
    batch_def = asset.add_batch_definition_whole_dataframe(f"{name}_whole")
    suite = context.suites.add(gx.ExpectationSuite(name=f"{name}_suite_{suffix}"))
    for expectation in build(gx.expectations):
        suite.add_expectation(expectation)
    batch = batch_def.get_batch(batch_parameters={"dataframe": df})
    result = batch.validate(suite)
    details = []
    for r in result.results:
        cfg = r.expectation_config
        res = r.result or {}
        details.append({
            "expectation": cfg.type, "column": cfg.kwargs.get("column"), "success": bool(r.success),
            "unexpected_count": res.get("unexpected_count"),
            "sample": [str(v)[:60] for v in (res.get("partial_unexpected_list") or [])[:5]],
        })
    return bool(result.success), details
