"""Checks on staged source users: the pandera schema (blocking) and a Great Expectations suite (warn)."""


import dagster as dg
from pandera.errors import SchemaErrors

from assets.sync import DESIRED, STAGED
from checks.gx_suite import validate as gx_validate
from xts_pipeline import queries, staging, store
from xts_pipeline.vocabulary import shown_pair


def _xts(context: dg.AssetCheckExecutionContext, *argv: str) -> str:
    """A complete, paste-safe `xts` command for this topology (`--config` unless it is the packaged demo)."""
    from xts_pipeline.paths import config_args, shell_command

    return shell_command("xts", argv[0], *config_args(context.resources.topology.config_path), *argv[1:])


def _staged_frame(context: dg.AssetCheckExecutionContext, tenant: str):
    """The tenant's staged users as the schema sees them, with staging's sound pre-check (`surely_valid`)."""
    with context.resources.duckdb.connect() as con:
        df = staging.raw_frame(con, tenant, attrs=False, precheck=True)
        staged_ids = {r[0] for r in con.execute(queries.load("staging_checks/staged_ids", "checks"), [tenant]).fetchall()}
        rejected = store.count(con, "rejected_users", "tenant", tenant)
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
        # Rows the pre-check passes pass every row check of the schema (tests/test_staging.py proves it), and
        # with unique ids the frame-wide check holds on any subset: pandera reads only the other rows, so the
        # failures are the same as over the whole frame at a fraction of the cost.
        checked = staged[~staged["surely_valid"].to_numpy(dtype=bool)] if staged["id"].is_unique else staged
        try:
            staging.user_schema().validate(checked.drop(columns="surely_valid"), lazy=True)
        except SchemaErrors as err:
            failures = err.failure_cases.head(20).astype(str).to_dict("records")
        fraction = rejected / total if total else 0.0
        passed = not failures and fraction <= max_fraction
        with context.resources.duckdb.connect() as con:
            first = [f"{upn or rid}: {reasons}" for rid, upn, reasons in con.execute(
                queries.load("staging_checks/rejected_samples", "checks"),
                [tenant]).fetchall()]
        # Rejected users are reported even within the limit: they are never synced until fixed at the source.
        description = (f"tenant {tenant}: {rejected}/{total} rejected ({fraction:.1%}, max {max_fraction:.1%})"
                       + (f"; {len(failures)} staged rows break the schema" if failures else "")
                       + (f"; first: {' | '.join(f[:160] for f in first[:3])}" if first else "")
                       + ("" if passed else "; the previous staged snapshot is kept"))
        return dg.AssetCheckResult(
            passed=passed, description=description[:2000],
            metadata={"staged": len(staged), "rejected": int(rejected), "reject_fraction": float(fraction),
                      "max_reject_fraction": float(max_fraction),
                      "first_rejects": dg.MetadataValue.md("\n".join(f"- {f}" for f in first) or "none"),
                      "all_rejects": _xts(context, "log", "--kind", "rejected"),
                      "schema_failures": dg.MetadataValue.json(failures)})

    @dg.asset_check(asset=STAGED, blocking=False, partitions_def=partitions_def, required_resource_keys={"duckdb"},
                    description="Great Expectations 1.x: no two staged users share a UPN or a mail address "
                                "(case-insensitive), which the per-row schema cannot see")
    def staged_users_expectations(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        """Collisions across rows, what the pandera schema (one row at a time, plus unique ids) leaves out.

        Entra: "A UPN must be unique among all security principal objects within a directory forest."
        (hybrid/connect/plan-connect-userprincipalname.md); a source that breaks it is broken. Values are
        compared case-folded because the planner matches users by their address in lower case (its `addr`):
        two source users whose mails differ only in case are one address to adoption and to the
        duplicate-create rule in every target, so the tenant's owner should hear it.
        """
        tenant = context.partition_key
        staged, _, _ = _staged_frame(context, tenant)
        folded = staged.assign(upn_folded=staged["user_principal_name"].str.casefold(),
                               mail_folded=staged["mail"].str.casefold())[["id", "upn_folded", "mail_folded"]]

        def suite(E):  # noqa: N803 - gx.expectations namespace
            return [E.ExpectColumnValuesToBeUnique(column="upn_folded"),
                    E.ExpectColumnValuesToBeUnique(column="mail_folded")]  # nulls are not compared

        ok, details = gx_validate(folded, suite, f"staged_{tenant}")
        shared = {d["column"]: d["unexpected_count"] for d in details if not d["success"]}
        return dg.AssetCheckResult(
            passed=ok, severity=dg.AssetCheckSeverity.WARN,
            description=(f"tenant {tenant}: no UPN or mail is shared by two staged users" if ok else
                         f"tenant {tenant}: " + ", ".join(f"{n} users share a {c.removesuffix('_folded')} value"
                                                          for c, n in shared.items())),
            metadata={"expectations": dg.MetadataValue.json(details), "rows": len(staged)})

    return [staged_users_schema, staged_users_expectations]


def build_desired_checks(partitions_def: dg.PartitionsDefinition | None = None) -> list[dg.AssetChecksDefinition]:
    """Mapping errors per pair: WARN with the first reasons; blocking ERROR when every in-scope user fails."""

    @dg.asset_check(asset=DESIRED, blocking=True, partitions_def=partitions_def,
                    required_resource_keys={"duckdb", "topology"},
                    description="attribute mappings evaluate for the pair's in-scope users; a pair where every "
                                "in-scope user fails its mapping is an error and plans nothing")
    def mappings_evaluate(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        pair_key = context.partition_key
        shown = shown_pair(pair_key)
        with context.resources.duckdb.connect() as con:
            errors = store.count(con, "desired_errors", "pair_key", pair_key)
            mapped = store.count(con, "desired_users", "pair_key", pair_key)
            first = [f"{upn or sid}: {err}" for sid, upn, err in con.execute(
                queries.load("staging_checks/mapping_error_samples", "checks"), [pair_key]).fetchall()]
        all_failed = bool(errors) and not mapped
        description = (f"{shown}: no mapping errors ({mapped} in-scope users mapped)" if not errors else
                       f"{shown}: {errors} mapping error(s), {mapped} user(s) mapped"
                       + ("; every in-scope user failed: nothing is planned" if all_failed else
                          "; those users are left untouched")
                       + f"; first: {' | '.join(f[:160] for f in first[:3])}")
        return dg.AssetCheckResult(
            passed=not errors, severity=dg.AssetCheckSeverity.ERROR if all_failed else dg.AssetCheckSeverity.WARN,
            description=description[:2000],
            metadata={"pair": shown, "mapping_errors": int(errors), "mapped": int(mapped),
                      "first_errors": dg.MetadataValue.md("\n".join(f"- {f}" for f in first) or "none"),
                      "all_errors": _xts(context, "log", "--pair", shown, "--kind", "mapping_error")})

    return [mappings_evaluate]
