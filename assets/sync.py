"""The sync assets: thin Dagster wrappers over xts_pipeline's extract, staging, desired, planner and apply.

Lineage: raw_source_users -> staged_source_users (per source tenant) -> desired_state (per pair) ->
provisioning_plan (per pair) -> guarded_plan (per pair: the guardrails' verdicts, assets/guarded_plan.py)
-> applied_changes (per pair); target_snapshot (per target tenant) feeds
desired_state and provisioning_plan. Cross-partition edges use StaticPartitionMappings built from the
config, so the UI shows which tenants feed which pair; the data itself is read from DuckDB.

Pools: assets that only compute over DuckDB run in pool "duckdb" (limit 1 in dagster.yaml). Assets that
mostly wait on Graph (extraction, snapshot, apply) are outside the pool and take the file lock only for
short writes, so applies to different targets run concurrently, each within its own target's budget.
"""


from typing import Any

import dagster as dg

from assets.keys import APPLIED, DESIRED, GUARDED, PLAN, RAW, SNAPSHOT, STAGED
from assets.lease_hook import pair_step, snapshot_step, store_session, target_write_step, tenant_step
from assets.metadata import counts_md, plan_pages, table_metadata
from assets.partitions import SyncPartitions
from assets.resources import GraphResource, StagingDuckDB, TopologyResource
from assets.topology_assets import owners, pair_key
from xts_pipeline import apply as apply_mod
from xts_pipeline import desired, extract, mappings, paths, planner, queries, staging, unchanged

DUCKDB_POOL = "duckdb"


class PlanConfig(dg.Config):
    """Run config of the plan step; `only_user` provisions one user on demand (id, UPN or mail)."""

    only_user: str | None = None
    # A full re-diff of every user now, not only the changed ones (`xts sync --full`; otherwise once a day).
    full: bool = False


def pair_spec(topology: Any, pair_key: str) -> planner.PairSpec:
    """The planner's view of a configured pair."""
    pair = topology.pair(pair_key)
    actions = pair.target_object_actions
    return planner.PairSpec(
        key=pair.key, source=pair.source, target=pair.target,
        source_tenant_id=topology.tenant(pair.source).tenant_id, deprovision_action=pair.deprovision_action,
        allow_create=actions.create, allow_update=actions.update, allow_delete=actions.delete,
        drift=pair.drift, protected=tuple(e.value for e in topology.inbound_policy(pair.target).impersonation.entries()),
    )


def _table_md(context: dg.AssetExecutionContext, table: str, params: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """table_metadata over a short-lived connection of the duckdb resource."""
    with context.resources.duckdb.connect() as con:
        return table_metadata(con, table, params, **kw)


def _guardrail_verdicts(context: Any, topo: Any, pair_key: str, fingerprint: str) -> tuple[dict, list[str]]:
    """Per-user holds (change_id -> (guardrail, reason)) and blocking guardrails for this exact plan.

    The same pure runner, inputs, approval and printed commands as the guarded-plan step, so the preview
    marks the users it will hold; guarded_plan remains what decides (it runs next, and apply obeys it).
    """
    from xts_pipeline.guardrails.approvals import find_approval
    from xts_pipeline.guardrails.inputs import load_pair_inputs
    from xts_pipeline.guardrails.runner import run_guardrails
    from xts_pipeline.paths import config_args

    pair = topo.pair(pair_key)
    policy = topo.inbound_policy(pair.target)
    try:
        with context.resources.duckdb.connect() as con:
            inputs = load_pair_inputs(con, pair.key, pair.source, pair.target, policy.volume.window_hours,
                                      [p.key for p in topo.pairs() if p.target == pair.target])
            approval = find_approval(con, pair.key, fingerprint)
        report = run_guardrails(inputs, policy, approval, fingerprint=fingerprint,
                                config_args=config_args(context.resources.topology.config_path))
    except Exception as exc:  # noqa: BLE001 - the preview must never fail the plan; the checks still decide
        context.log.warning(f"plan preview of {pair.name}: guardrail verdicts unavailable ({type(exc).__name__}: {exc})")
        return {}, []
    holds = {r["change_id"]: (r["check_name"], r["reason"]) for r in report.exclusions()}
    return holds, [f"guardrail_{r.name}" for r in report.results if r.blocking]


def _summary_md(counts: dict[str, int], status: str) -> dg.MetadataValue:
    """One row with the columns and words of `xts sync`'s summary, so the UI and the CLI agree."""
    from assets.summary import SUMMARY_COLUMNS

    head = "| " + " | ".join((*SUMMARY_COLUMNS, "status")) + " |"
    return dg.MetadataValue.md(head + "\n|" + "---:|" * len(SUMMARY_COLUMNS) + "---|\n| "
                               + " | ".join(str(counts.get(c, 0)) for c in SUMMARY_COLUMNS) + f" | {status} |")


def _dry_counts(con: Any, pair_key: str, held: set[str]) -> dict[str, int]:
    """What `xts sync --dry-run` counts for this plan: planned rows by action, held users apart."""
    from assets.summary import _WRITE_ACTIONS

    out = {"held": len(held), "skips": 0}
    rows = con.execute(queries.load("sync/dry_run_counts", "assets"),
                       [pair_key, sorted(held)]).fetchall()
    for action, n in rows:
        col = "skips" if action == "skip" else _WRITE_ACTIONS.get(action)
        if col:
            out[col] = out.get(col, 0) + int(n)
    return out


def _applied_summary(db: Any, spec: Any, blocked: list[str], res: Any) -> dg.MetadataValue:
    """What `xts sync` prints for this pair after this apply (the same counting code)."""
    from assets.summary import PairOutcome, _pair_counts

    o = PairOutcome(pair_key=spec.key, failed_checks=list(blocked), quarantined=res.quarantine or "")
    _pair_counts(db, spec.key, spec.source, False, o)
    return _summary_md(o.counts, o.status)


def _failed_checks(context: dg.AssetExecutionContext) -> int:
    """Checks of this run that failed at ERROR so far: a run with one is not a clean run to skip after. A WARN
    (held users, rejected rows) is not: the same inputs give the same verdict."""
    records = context.instance.get_records_for_run(context.run.run_id,
                                                   of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    evals = [r.event_log_entry.dagster_event.event_specific_data for r in records]
    return sum(1 for e in evals if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR)


def _on_demand_md(db: Any, topo: Any, pair_key: str) -> dict[str, Any]:
    """Entra's on-demand steps for the plan's only_user (empty for an ordinary cycle)."""
    from xts_pipeline import on_demand, plan_meta, store

    with store.connect(db) as con:
        meta = plan_meta.read(con, pair_key)
    if meta is None or not meta.only_user:
        return {}
    steps = on_demand.explain(db, topo, pair_key, meta.only_user)
    return {"on_demand_user": meta.only_user, "on_demand_steps": dg.MetadataValue.md(on_demand.render(steps))}


def build_sync_assets(parts: SyncPartitions) -> list[dg.AssetsDefinition]:
    """The six assets, partitioned as the topology says (guarded_plan, between plan and apply, is built by
    assets/guarded_plan.py). The three that call Graph take their resources (`graph` among them) as typed parameters."""
    base_keys = {"duckdb", "topology"}

    @dg.asset(key=RAW, partitions_def=parts.sources, group_name="source", kinds={"duckdb", "python"},
              code_version="1", owners=owners())
    def raw_source_users(context: dg.AssetExecutionContext, graph: GraphResource, topology: TopologyResource,
                         duckdb: StagingDuckDB) -> dg.MaterializeResult:
        """Source users by Graph delta query: first run reads all, later runs only changes; cursor in DuckDB."""
        tenant = context.partition_key
        topo = topology.load()
        db = duckdb.db()
        pairs = [p for p in topo.pairs() if p.enabled and p.source == tenant]
        select: set[str] = set()
        for p in pairs:
            select |= set(getattr(p.mappings, "source_attributes", ()) or ())
            select |= {c["attribute"] for f in p.filters for c in f["clauses"]}
        client = graph.client(tenant)
        with tenant_step(context, db, "source", tenant):
            res = extract.extract_source_users(db, tenant, client, context.run.run_id,
                                               extra_select=mappings.source_select(select))
            groups = extract.extract_source_groups(db, tenant, client, {g for p in pairs for g in p.scope.groups})
            domains = extract.read_verified_domains(db, tenant, client)
        context.log.info(f"tenant {tenant}: {res.mode} delta round, {res.pages} page(s), {res.upserted} upserted, "
                         f"{res.removed} removed, {res.total} users")
        md = _table_md(context, "raw_users", {"tenant": tenant}, order="id")
        return dg.MaterializeResult(metadata={
            **md, "mode": res.mode, "pages": res.pages, "upserted": res.upserted, "removed": res.removed,
            "dropped_unseen": res.dropped_unseen, "verified_domains": dg.MetadataValue.json(domains),
            "assigned_group_members": dg.MetadataValue.json(groups)})

    @dg.asset(key=STAGED, deps=[RAW], partitions_def=parts.sources, group_name="source",
              kinds={"duckdb", "pandas"}, required_resource_keys=base_keys, pool=DUCKDB_POOL, code_version="1", owners=owners())
    @store_session(lambda c, db: tenant_step(c, db, "source", c.partition_key))
    def staged_source_users(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        """Raw users validated by the pandera schema; invalid rows go to rejected_users with reasons."""
        tenant = context.partition_key
        topo = context.resources.topology.load()
        db = context.resources.duckdb.db()
        try:
            with tenant_step(context, db, "source", tenant):
                res = staging.stage_tenant(db, tenant, topo.staging.max_reject_fraction)
        except staging.StagingBlocked as exc:
            raise dg.Failure(description=str(exc)) from None
        md = _table_md(context, "staged_users", {"tenant": tenant}, order="id", count_by=("user_type",))
        return dg.MaterializeResult(metadata={
            **md, "total": res.total, "staged": res.staged, "rejected": res.rejected,
            "reject_fraction": float(res.reject_fraction), "max_reject_fraction": float(res.max_reject_fraction),
            "sample_rejects": dg.MetadataValue.json(res.sample_rejects)})

    @dg.asset(key=SNAPSHOT, partitions_def=parts.targets, group_name="target", kinds={"duckdb", "python"},
              code_version="1", owners=owners())
    def target_snapshot(context: dg.AssetExecutionContext, graph: GraphResource, topology: TopologyResource,
                        duckdb: StagingDuckDB) -> dg.MaterializeResult:
        """The target's users (linked B2B users, guests, members), dynamic groups, role holders, partner policies."""
        tenant = context.partition_key
        topo = topology.load()
        db = duckdb.db()
        partners = sorted({(p.source, topo.tenant(p.source).tenant_id) for p in topo.pairs()
                           if p.enabled and p.target == tenant})
        cfg = topo.tenant(tenant)
        if not cfg.app_object_id:
            context.log.warning(f"target {tenant}: no app_object_id in the config, so the link extensions can't be "
                                f"registered or read; set tenants.{tenant}.app_object_id")
        mapped = sorted({t for p in topo.pairs() if p.enabled and p.target == tenant
                         for t in getattr(p.mappings, "targets", ()) or () if str(t).startswith("extension_")})
        with snapshot_step(context, db, tenant):
            res = extract.snapshot_target(db, tenant, graph.client(tenant), cfg.client_id, partners,
                                          extra_select=mapped, app_object_id=cfg.app_object_id)
        for warning in res.warnings:
            context.log.warning(warning)
        for source, allowed in res.policies.items():
            if not allowed:
                context.log.warning(f"target {tenant} does not allow sync from {source} (isSyncAllowed="
                                    f"{allowed}); pair {source}->{tenant} will write nothing")
        md = _table_md(context, "target_users", {"tenant": tenant}, order="id", count_by=("user_type",))
        return dg.MaterializeResult(metadata={
            **md, "linked_b2b_users": res.linked, "guests": res.guests, "groups": res.groups,
            "dynamic_groups": res.dynamic_groups, "directory_role_holders": res.role_holders,
            "warnings": dg.MetadataValue.md("\n".join(f"- WARN: {w}" for w in res.warnings) or "none"),
            "inbound_sync_allowed": dg.MetadataValue.json({k: v for k, v in res.policies.items()})})

    @dg.asset(key=DESIRED, partitions_def=parts.pairs, group_name="pair", kinds={"duckdb", "python"},
              deps=[dg.AssetDep(STAGED, partition_mapping=parts.source_to_pairs),
                    dg.AssetDep(SNAPSHOT, partition_mapping=parts.target_to_pairs)],
              required_resource_keys=base_keys, pool=DUCKDB_POOL, code_version="1", owners=owners())
    @store_session(lambda c, db: pair_step(c, db, c.partition_key, "desired_state"))
    def desired_state(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        """Scoping filters, assignment and attribute mappings applied to the source's staged users."""
        topo = context.resources.topology.load()
        pair = topo.pair(context.partition_key)
        with pair_step(context, context.resources.duckdb.db(), pair.key, "desired_state"):
            unchanged.forget(context.resources.duckdb.db(), topo, pair.key)  # only a clean end of this run records anew
            res = desired.compute_desired(context.resources.duckdb.db(), pair, topo.tenant(pair.source).tenant_id)
        md = _table_md(context, "desired_users", {"pair_key": pair.key}, order="source_object_id")
        counts = {"source users": res.source_users, "in scope": res.in_scope, "not internal members (never synced)":
                  res.not_internal, "not assigned": res.not_assigned, "filtered out": res.out_of_scope,
                  "mapping errors": res.mapping_errors}
        return dg.MaterializeResult(metadata={**md, "counts": counts_md(counts), "in_scope": res.in_scope,
                                              "mode": res.mode,
                                              "mapping_errors": dg.MetadataValue.json(res.sample_errors)})

    @dg.asset(key=PLAN, partitions_def=parts.pairs, group_name="pair", kinds={"duckdb", "sql"},
              deps=[DESIRED, dg.AssetDep(SNAPSHOT, partition_mapping=parts.target_to_pairs)],
              required_resource_keys=base_keys, pool=DUCKDB_POOL, code_version="1", owners=owners())
    @store_session(lambda c, db: pair_step(c, db, c.partition_key, "provisioning_plan"))
    def provisioning_plan(context: dg.AssetExecutionContext, config: PlanConfig) -> dg.MaterializeResult:
        """What this pair would write: create / update (old -> new) / disable / delete / restore / skip."""
        topo = context.resources.topology.load()
        spec = pair_spec(topo, context.partition_key)
        db = context.resources.duckdb.db()
        if context.run.job_name == "provision_one_user_job" and not (config.only_user or "").strip():
            raise dg.Failure(description="on-demand provisioning needs its user: set only_user (object id, UPN or "
                                         "mail); a whole-pair cycle is pair_sync_job")
        with pair_step(context, db, spec.key, "provisioning_plan"):
            summary = planner.plan_pair(db, spec, context.run.run_id, only_user=config.only_user,
                                        incremental=not config.full)
        if summary.blocked_reason:
            context.log.warning(summary.blocked_reason)
        md = _table_md(
            context, "plan", {"pair_key": spec.key},
            # Updates, disables and deletes first: their old -> new is what a reviewer needs to see.
            order="CASE action WHEN 'create' THEN 1 ELSE 0 END, action, user_principal_name", limit=50,
            order_label="action (changes to existing users first), user principal name")
        md["dagster/row_count"] = dg.MetadataValue.int(sum(summary.counts.values()))
        holds, stops = _guardrail_verdicts(context, topo, spec.key, summary.fingerprint)
        with context.resources.duckdb.connect() as con:
            md.update(plan_pages(con, spec.key, holds))
        md["held_users"] = dg.MetadataValue.int(len(holds))
        with context.resources.duckdb.connect() as con:
            md["summary"] = _summary_md(_dry_counts(con, spec.key, set(holds)), "blocked" if stops else "planned")
        md["pair_blocked_by"] = ", ".join(stops) or "nothing: no pair guardrail blocks this plan"
        if config.only_user:
            md.update(_on_demand_md(db, topo, spec.key))
        return dg.MaterializeResult(metadata={
            **md, "counts_by_action": counts_md(summary.counts), "writes": summary.writes,
            "fingerprint": summary.fingerprint, "cycle_id": summary.cycle_id,
            "drift": dg.MetadataValue.int(summary.drift),
            "plan_kind": "full" if summary.full else "incremental (changed users, pending creates, retries)",
            "sync_allowed": str(summary.sync_allowed), "blocked_reason": summary.blocked_reason or "",
            "only_user": config.only_user or ""})

    @dg.asset(key=APPLIED, deps=[GUARDED], partitions_def=parts.pairs, group_name="pair", kinds={"duckdb", "python"},
              code_version="1", owners=owners())
    def applied_changes(context: dg.AssetExecutionContext, graph: GraphResource, topology: TopologyResource,
                        duckdb: StagingDuckDB) -> dg.MaterializeResult:
        """Runs the plan through the Graph writer and records every outcome in provisioning_log.

        Reads the guardrails' verdicts from the store it writes to (guarded_plan's report on this same
        plan: cycle and fingerprint) and refuses to write when one stops the pair or when there is none
        for the current plan, even when this asset is materialized on its own.
        """
        from xts_pipeline.guardrails import verdicts

        topo = topology.load()
        spec = pair_spec(topo, context.partition_key)
        pair = topo.pair(spec.key)
        target = topo.tenant(spec.target)
        db = duckdb.db()
        with duckdb.connect() as con:
            blocked = verdicts.apply_blocks(con, spec.key)
        ctx = apply_mod.ApplyContext(pair=spec, target_tenant_id=target.tenant_id,
                                     target_app_object_id=target.app_object_id, user_type=pair.user_type,
                                     quarantine=topo.inbound_policy(spec.target).quarantine,
                                     config_args=tuple(paths.config_args(topology.config_path)))
        try:
            with pair_step(context, db, spec.key, "applied_changes"), target_write_step(context, db, spec.target):
                res = apply_mod.apply_pair(db, ctx, graph.client(spec.target), blocked_by=blocked)
        except apply_mod.PairQuarantinedError as exc:
            raise dg.Failure(description=str(exc)) from None
        if res.blocked_reason:
            context.log.warning(f"pair {pair.name}: nothing written: {res.blocked_reason}")
        if res.quarantine:
            context.log.error(res.quarantine)
        md = _table_md(
            context, "provisioning_log", {"pair_key": spec.key, "cycle_id": res.cycle_id},
            order="status, action", count_by=("action", "status"), limit=50)
        md.update(_on_demand_md(db, topo, spec.key))
        md["summary"] = _applied_summary(db, spec, blocked, res)
        if (context.run.job_name == "pair_sync_job" and not (blocked or res.blocked_reason or res.quarantine
                                                             or res.failures or res.write_failures or res.pending_links)
                and not _failed_checks(context)):
            # A clean apply: a later cycle whose inputs hash the same can skip this pair's run (xts_pipeline/unchanged.py).
            md["inputs_fingerprint"] = unchanged.record(db, topo, spec.key, context.run.run_id, res.cycle_id or "")
        # The pair's own asset (lineage: its source and target tenants) records this cycle's outcome.
        context.log_event(dg.AssetMaterialization(asset_key=pair_key(spec.key), partition=None, metadata={
            "cycle_id": res.cycle_id or "", "counts": counts_md(res.counts), "writes": res.writes,
            "write_failures": res.write_failures, "blocked_reason": res.blocked_reason or "",
            "quarantine": res.quarantine or "not quarantined", "apply_run": context.run.run_id}))
        return dg.MaterializeResult(metadata={
            **md, "counts": counts_md(res.counts), "blocked_reason": res.blocked_reason or "",
            "failures": dg.MetadataValue.json(res.failures), "reconciled_after_crash": res.reconciled,
            "pending_links": res.pending_links, "already_applied": res.already_applied,
            "writes": res.writes, "write_failures": res.write_failures,
            "quarantine": res.quarantine or "not quarantined", "cycle_id": res.cycle_id or ""})

    return [raw_source_users, staged_source_users, target_snapshot, desired_state, provisioning_plan,
            applied_changes]
