"""Checks on staged source users: the pandera schema (blocking) and a Great Expectations suite (warn)."""


import dagster as dg
from pandera.errors import SchemaErrors

from assets.sync import STAGED
from checks.gx_suite import validate as gx_validate
from xts_pipeline import staging


def _staged_frame(context: dg.AssetCheckExecutionContext, tenant: str):
    with context.resources.duckdb.connect() as con:
        df = staging.raw_frame(con, tenant)
        staged_ids = {r[0] for r in con.execute("SELECT id FROM staged_users WHERE tenant = ?", [tenant]).fetchall()}
        rejected = con.execute("SELECT count(*) FROM rejected_users WHERE tenant = ?", [tenant]).fetchone()[0]
    return df[df["id"].isin(staged_ids)], len(df), rejected


def build_staging_checks(partitions_def: dg.PartitionsDefinition | None = None) -> list[dg.AssetChecksDefinition]:
    """Checks per source tenant: partitioned like the asset, so the Checks tab shows each tenant's result."""
    @dg.asset_check(asset=STAGED, blocking=True, partitions_def=partitions_def, required_resource_keys={"duckdb", "topology"},
                    description="pandera schema over staged users; rejects within staging.max_reject_fraction")
    def staged_users_schema(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        tenant = context.partition_key
        max_fraction = context.resources.topology.load().staging.max_reject_fraction
        staged, total, rejected = _staged_frame(context, tenant)
        failures: list[dict] = []
        try:
            staging.user_schema().validate(staged, lazy=True)
        except SchemaErrors as err:
            failures = err.failure_cases.head(20).astype(str).to_dict("records")
        fraction = rejected / total if total else 0.0
        passed = not failures and fraction <= max_fraction
        return dg.AssetCheckResult(
            passed=passed,
            description=None if passed else (
                f"tenant {tenant}: {rejected}/{total} rejected ({fraction:.1%}, max {max_fraction:.1%})"
                + (f"; {len(failures)} staged rows break the schema" if failures else "")),
            metadata={"staged": len(staged), "rejected": int(rejected), "reject_fraction": float(fraction),
                      "max_reject_fraction": float(max_fraction),
                      "schema_failures": dg.MetadataValue.json(failures)})

    @dg.asset_check(asset=STAGED, blocking=False, partitions_def=partitions_def, required_resource_keys={"duckdb"},
                    description="Great Expectations 1.x suite over staged users")
    def staged_users_expectations(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        tenant = context.partition_key
        staged, _, _ = _staged_frame(context, tenant)

        def suite(E):  # noqa: N803 - gx.expectations namespace
            return [
                E.ExpectColumnValuesToBeUnique(column="id"),
                E.ExpectColumnValuesToNotBeNull(column="id"),
                E.ExpectColumnValuesToMatchRegex(column="id", regex=staging.GUID_RE),
                E.ExpectColumnValuesToBeUnique(column="user_principal_name"),
                E.ExpectColumnValuesToNotBeNull(column="user_principal_name"),
                E.ExpectColumnValuesToBeInSet(column="user_type", value_set=staging.USER_TYPES),
                E.ExpectColumnValueLengthsToBeBetween(column="display_name", min_value=1, max_value=256),
                E.ExpectColumnValuesToMatchRegex(column="mail", regex=staging.MAIL_RE, mostly=1.0),
            ]

        ok, details = gx_validate(staged, suite, f"staged_{tenant}")
        return dg.AssetCheckResult(passed=ok, severity=dg.AssetCheckSeverity.WARN,
                                   metadata={"expectations": dg.MetadataValue.json(details), "rows": len(staged)})

    return [staged_users_schema, staged_users_expectations]
