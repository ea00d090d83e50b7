"""The guarded-plan step and its guardrail checks in Dagster: results per guardrail, severities, holds,
approval, and a block as an expected outcome (failed checks, apply skipped, no failed step).

The plan asset here is a stand-in that writes plan rows into the real staging schema; the guarded step,
its checks, resources, topology and DuckDB are the project's own.
"""

from __future__ import annotations

import json

import dagster as dg
import pytest

from assets.guarded_plan import GUARDED, build_guarded_plan
from assets.resources import StagingDuckDB, TopologyResource
from checks.guardrails import CHECK_PREFIX
from xts_pipeline import store
from xts_pipeline.config import default_config_path, load_config
from xts_pipeline.guardrails.approvals import record_approval
from xts_pipeline.guardrails.volume import creates_limit

PAIR = "contoso__fabrikam"
PLAN = dg.AssetKey("provisioning_plan")
PARTS = dg.StaticPartitionsDefinition([PAIR])


def make_plan_asset(rows: list[tuple[str, dict]]):
    @dg.asset(key=PLAN, partitions_def=PARTS, required_resource_keys={"duckdb"})
    def provisioning_plan(context):
        with context.resources.duckdb.connect() as con:
            con.execute("DELETE FROM plan WHERE pair_key = ?", [PAIR])
            con.execute("INSERT OR REPLACE INTO target_policy (tenant, source_tenant, is_sync_allowed) "
                        "VALUES ('fabrikam', 'contoso', true)")
            con.execute("DELETE FROM staged_users")
            con.execute("INSERT INTO staged_users (tenant, id, user_principal_name, user_type) VALUES "
                        "('contoso', 'bad', 'bad_litware.com#EXT#@contoso.onmicrosoft.com', 'Guest')")
            run_id = context.run.run_id
            for sid, desired in rows:
                con.execute("INSERT INTO plan (pair_key, cycle_id, change_id, source_object_id, action, changes, "
                            "desired) VALUES (?, ?, ?, ?, 'create', '[]', ?)",
                            [PAIR, run_id, f"{run_id}-{sid}", sid, json.dumps(desired)])

    return provisioning_plan


def run_result(tmp_path, rows) -> dg.ExecuteInProcessResult:
    resources = {"duckdb": StagingDuckDB(path=str(tmp_path / "xts.duckdb")),
                 "topology": TopologyResource(config_path=str(default_config_path()))}
    return dg.materialize([make_plan_asset(rows), build_guarded_plan(PARTS, pool=None)], partition_key=PAIR,
                          resources=resources, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)


def run(tmp_path, rows):
    result = run_result(tmp_path, rows)
    assert result.success, "a guardrail verdict, passed or failed, is never a failed run"
    return {e.check_name.removeprefix(CHECK_PREFIX): e for e in result.get_asset_check_evaluations()}


@pytest.fixture(autouse=True)
def _approver(monkeypatch):
    monkeypatch.setenv("XTS_APPROVER", "ops")


def test_per_user_violation_warns_and_excludes_only_that_user(tmp_path) -> None:
    evals = run(tmp_path, [("ok", {"displayName": "Alex Wilber"}), ("bad", {"displayName": "Loop"})])
    assert set(evals) == {"sources", "loop_guard", "volume", "deletions", "impersonation", "privilege",
                          "attribute_policy", "attribute_validity", "quarantine"}
    loop = evals.pop("loop_guard")
    assert not loop.passed and loop.severity == dg.AssetCheckSeverity.WARN
    assert "bad_litware.com#EXT#" in loop.description
    assert all(e.passed for e in evals.values()), {k: e.description for k, e in evals.items() if not e.passed}
    assert evals["volume"].metadata["count"].value == 1  # the held user is never written, so not counted
    with store.connect(tmp_path / "xts.duckdb") as con:
        excluded = con.execute("SELECT source_object_id FROM plan p JOIN plan_exclusions e USING (change_id)").fetchall()
    assert excluded == [("bad",)]


def test_flood_fails_at_error_then_approval_passes(tmp_path) -> None:
    limit, _ = creates_limit(load_config(default_config_path()).inbound_policy("fabrikam"), target_size=0)
    rows = [(f"u{i}", {"displayName": f"Flood {i}"}) for i in range(limit + 10)]
    evals = run(tmp_path, rows)
    vol = evals["volume"]
    assert not vol.passed and vol.severity == dg.AssetCheckSeverity.ERROR
    assert f"{limit + 10} > {limit}" in vol.description
    fp = vol.metadata["plan_fingerprint"].value
    with store.connect(tmp_path / "xts.duckdb") as con:
        record_approval(con, PAIR, fp, "initial merger load")
    evals = run(tmp_path, rows)
    assert evals["volume"].passed and evals["volume"].metadata["approval"].value["approved_by"] == "ops"


def test_a_block_is_failed_checks_and_no_output_not_a_failed_step(tmp_path) -> None:
    """The run succeeds, no step fails, the volume check fails at ERROR with the approve command exactly
    once, the guarded plan is not materialized (so Dagster skips apply), and the store holds the verdicts."""
    limit, _ = creates_limit(load_config(default_config_path()).inbound_policy("fabrikam"), target_size=0)
    result = run_result(tmp_path, [(f"u{i}", {"displayName": f"Flood {i}"}) for i in range(limit + 10)])
    assert result.success
    assert not [e for e in result.all_events if e.is_step_failure]
    assert not result.asset_materializations_for_node("guarded_plan")
    evals = {e.check_name.removeprefix(CHECK_PREFIX): e for e in result.get_asset_check_evaluations()}
    vol = evals["volume"]
    assert not vol.passed and vol.severity == dg.AssetCheckSeverity.ERROR
    assert vol.asset_key == GUARDED and vol.partition == PAIR  # per-pair results in the Checks tab
    cmd = vol.metadata["approve_with"].value
    assert cmd.startswith("xts approve --pair 'contoso->fabrikam' --plan ") and cmd.endswith("--reason ...")
    assert vol.description.count("xts approve") == 1, vol.description
    assert vol.description.count(cmd) == 1
    with store.connect(tmp_path / "xts.duckdb") as con:
        rows = con.execute("SELECT check_name, passed, stops_pair, approve_command FROM guardrail_verdicts "
                           "WHERE pair_key = ? AND NOT passed", [PAIR]).fetchall()
    assert rows == [("volume", False, True, cmd)]
