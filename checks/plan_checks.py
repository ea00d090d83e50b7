"""Checks on the provisioning plan of a pair.

- plan_is_consistent (blocking, ERROR): invariants every plan must meet before anything is written.
- plan_expectations (WARN): a Great Expectations 1.x suite over the planned rows.
- target_allows_sync (WARN): says plainly when the target's isSyncAllowed is off (apply then writes nothing).

An inconsistent plan is a real error: the blocking check fails its step, and apply re-checks the same
invariants itself (apply.consistency_problems) when it is materialized alone. The guardrails are
judged next, by the guarded_plan step (assets/guarded_plan.py, checks/guardrails.py).
"""


import dagster as dg

from assets.sync import PLAN, pair_spec
from checks.gx_suite import validate as gx_validate
from xts_pipeline import plan_meta, planner, queries
from xts_pipeline.vocabulary import ACTIONS, shown_pair


def build_plan_checks(partitions_def: dg.PartitionsDefinition | None = None) -> list[dg.AssetChecksDefinition]:
    """Checks per pair: partitioned like the plan, so the Checks tab answers which pairs pass and fail now."""
    @dg.asset_check(asset=PLAN, partitions_def=partitions_def, blocking=True, required_resource_keys={"duckdb", "topology"},
                    description="plan invariants: one write per user, no internal member touched, deletes only "
                                "of users this pair owns, creates have an address")
    def plan_is_consistent(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        spec = pair_spec(context.resources.topology.load(), context.partition_key)
        problems = planner.consistency_problems(context.resources.duckdb.db(), spec)
        return dg.AssetCheckResult(
            passed=not problems, severity=dg.AssetCheckSeverity.ERROR,
            description=f"{spec.source}->{spec.target}: plan invariants hold" if not problems else
            f"{spec.source}->{spec.target}: {problems[0][0]} ({problems[0][1]}) and {len(problems) - 1} more; the plan is not applied",
            metadata={"pair": f"{spec.source}->{spec.target}",
                      "problems": dg.MetadataValue.json([{"problem": p, "subject": s} for p, s in problems])})

    @dg.asset_check(asset=PLAN, partitions_def=partitions_def, blocking=False, required_resource_keys={"duckdb"},
                    description="Great Expectations 1.x suite over the planned rows")
    def plan_expectations(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        pair_key = context.partition_key
        with context.resources.duckdb.connect() as con:
            df = con.execute(
                queries.load("plan_checks/plan", "checks"), [pair_key]).df()
        writes = df[df["action"].isin(["update", "disable", "delete", "restore"])]

        def suite(E):  # noqa: N803 - gx.expectations namespace
            return [
                E.ExpectColumnValuesToBeUnique(column="change_id"),
                E.ExpectColumnValuesToBeInSet(column="action", value_set=list(ACTIONS)),
                E.ExpectColumnValuesToNotBeNull(column="changes"),
                E.ExpectColumnValuesToMatchRegex(column="changes", regex=r"^\[.*\]$"),
            ]

        ok, details = gx_validate(df, suite, f"plan_{pair_key}")
        missing_target = int(writes["target_user_id"].isna().sum())
        return dg.AssetCheckResult(
            passed=ok and missing_target == 0, severity=dg.AssetCheckSeverity.WARN,
            description=f"{shown_pair(pair_key)}: {len(df)} planned rows against the GX suite",
            metadata={"pair": shown_pair(pair_key), "expectations": dg.MetadataValue.json(details),
                      "rows": len(df),
                      "writes_without_target": missing_target})

    @dg.asset_check(asset=PLAN, partitions_def=partitions_def, blocking=False, required_resource_keys={"duckdb"},
                    description="the target's cross-tenant access setting allows inbound user sync from the source")
    def target_allows_sync(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        with context.resources.duckdb.connect() as con:
            meta = plan_meta.read(con, context.partition_key)
        allowed, reason = (meta.sync_allowed, meta.blocked_reason) if meta else (None, "no plan yet")
        pair = shown_pair(context.partition_key)
        text = reason or "the target's partner setting allows inbound sync from the source"
        return dg.AssetCheckResult(passed=bool(allowed), severity=dg.AssetCheckSeverity.WARN,
                                   description=text if pair in text else f"{pair}: {text}",
                                   metadata={"pair": pair, "isSyncAllowed": str(allowed)})

    return [plan_is_consistent, plan_expectations, target_allows_sync]
