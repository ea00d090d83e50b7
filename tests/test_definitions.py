"""The Dagster definitions: they load, partitions follow the config, lineage is as designed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from assets.definitions import build_definitions, cron_for_interval, defs
from tests.two_tenants import MERGER, TWO
from tests.two_tenants import write_topology as _write


def test_packaged_definitions_are_loadable():
    dg.Definitions.validate_loadable(defs())


def test_importing_the_definitions_module_builds_nothing(tmp_path):
    """The location is a lazy `@dg.definitions`: importing the module reads no topology and writes no
    environment variable; Dagster builds the definitions when it loads the location."""
    probe = textwrap.dedent("""
        import os, sys
        before = dict(os.environ)
        import assets.definitions as d
        from dagster.components.definitions import LazyDefinitions
        assert isinstance(d.defs, LazyDefinitions), type(d.defs)
        assert dict(os.environ) == before, sorted(set(os.environ) ^ set(before))
        assert "xts_pipeline.config.loader" not in sys.modules, "the topology was loaded at import"
    """)
    env = {k: v for k, v in os.environ.items() if k != "GX_ANALYTICS_ENABLED"}  # nothing may set it at import
    env["XTS_CONFIG"] = str(tmp_path / "no-such-topology.yaml")
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                          cwd=Path(__file__).parent.parent, check=False)
    assert done.returncode == 0, done.stderr[-2000:]


def test_lineage_and_checks_are_as_designed(tmp_path):
    d = build_definitions(_write(tmp_path, TWO), duckdb_path=tmp_path / "x.duckdb")
    graph = d.resolve_asset_graph()
    deps = {k.to_user_string(): sorted(p.to_user_string() for p in graph.get(k).parent_keys)
            for k in graph.get_all_asset_keys()}
    assert deps == {
        "raw_source_users": [], "staged_source_users": ["raw_source_users"], "target_snapshot": [],
        "desired_state": ["staged_source_users", "target_snapshot"],
        "provisioning_plan": ["desired_state", "target_snapshot"], "guarded_plan": ["provisioning_plan"],
        "applied_changes": ["guarded_plan"],
        # Generated from the topology: which tenants feed which pair.
        "tenant/contoso": [], "tenant/fabrikam": [], "pair/contoso__fabrikam": ["tenant/contoso", "tenant/fabrikam"],
    }
    pair = graph.get(dg.AssetKey(["pair", "contoso__fabrikam"]))
    assert pair.tags["xts/source"] == "contoso" and pair.tags["xts/target"] == "fabrikam"
    assert all(graph.get(k).owners for k in graph.get_all_asset_keys())
    # Checks are partitioned like their asset: the Checks tab shows each pair's (each tenant's) result.
    for key in graph.asset_check_keys:
        spec = graph.get_check_spec(key)
        assert spec.partitions_def == graph.get(spec.asset_key).partitions_def, key
    checks = {(k.asset_key.to_user_string(), k.name): graph.get_check_spec(k).blocking
              for k in graph.asset_check_keys}
    assert checks[("provisioning_plan", "plan_is_consistent")] is True
    assert checks[("staged_source_users", "staged_users_schema")] is True
    assert ("provisioning_plan", "plan_expectations") in checks
    assert ("staged_source_users", "staged_users_expectations") in checks
    # The guardrails are the guarded plan's checks, one per guardrail; they observe and never raise (a block
    # skips apply instead of failing a step), so none is a Dagster-blocking check.
    guardrails = {n for (a, n) in checks if a == "guarded_plan"}
    assert guardrails == {f"guardrail_{g}" for g in ("sources", "loop_guard", "volume", "deletions", "impersonation",
                                                     "privilege", "attribute_policy", "attribute_validity",
                                                     "quarantine")}
    assert not any(checks[("guarded_plan", n)] for n in guardrails)
    for name in ("pair_sync_job", "pair_dry_run_job", "provision_one_user_job"):
        assert "guarded_plan" in {k.to_user_string() for k in d.resolve_job_def(name).asset_layer.selected_asset_keys}
    assert {j.name for j in d.jobs} >= {"pair_sync_job", "pair_dry_run_job", "provision_one_user_job"}


def test_adding_a_tenant_and_pair_adds_partitions_without_code(tmp_path):
    """The merger scenario: a new tenant in the config yields new partitions, ready for a backfill."""
    before = build_definitions(_write(tmp_path, TWO), duckdb_path=tmp_path / "x.duckdb")
    grown = TWO.replace("schedule:", MERGER + "schedule:") + \
        "  - hub_inbound: {hub: contoso, spokes: [tailspin]}\n    scope: {all_members: true}\n"
    after = build_definitions(_write(tmp_path, grown), duckdb_path=tmp_path / "x.duckdb")

    def keys(d, asset):
        return set(d.resolve_assets_def(asset).partitions_def.get_partition_keys())

    assert keys(before, "provisioning_plan") == {"contoso__fabrikam"}
    assert keys(after, "provisioning_plan") == {"contoso__fabrikam", "tailspin__contoso"}
    assert keys(after, "raw_source_users") == {"contoso", "tailspin"}
    assert keys(after, "target_snapshot") == {"contoso", "fabrikam"}
    mapping = after.resolve_assets_def("desired_state")
    assert mapping is not None
    dg.Definitions.validate_loadable(after)


def test_schedule_uses_the_configured_interval(tmp_path):
    d = build_definitions(_write(tmp_path, TWO), duckdb_path=tmp_path / "x.duckdb")
    reqs = set()
    for name in ("sync_cycle_sources", "sync_cycle_targets"):
        sched = d.resolve_schedule_def(name)
        assert sorted(sched.cron_schedule) == sorted(cron_for_interval(40))
        ctx = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 11, 27, 14, 40, tzinfo=UTC))
        reqs |= {(r.partition_key, r.tags["xts/kind"]) for r in sched(ctx)}
    assert reqs == {("contoso", "source"), ("fabrikam", "target")}


@given(st.integers(1, 720))
def test_cron_for_interval_fires_every_interval(minutes):
    """Every fire time of a day, from the cron strings, is a multiple of the interval from midnight."""
    fires = set()
    for cron in cron_for_interval(minutes):
        m, h = cron.split()[:2]
        mins = range(0, 60, int(m[2:])) if m.startswith("*/") else [int(m)]
        hours = range(24) if h == "*" else [int(x) for x in h.split(",")]
        fires |= {hh * 60 + mm for hh in hours for mm in mins}
    assert fires == set(range(0, 24 * 60, minutes))


@pytest.mark.parametrize("interval", [40, 30, 7])
def test_cron_strings_are_valid(interval):
    for cron in cron_for_interval(interval):
        assert len(cron.split()) == 5


def test_graph_resource_holds_the_secret_as_an_envvar_and_never_shows_it(tmp_path, monkeypatch):
    from dagster._core.remote_representation.external_data import RepositorySnap

    monkeypatch.setenv("XTS_SECRET_CONTOSO", "s3cr3t-value")
    d = build_definitions(_write(tmp_path, TWO), duckdb_path=tmp_path / "x.duckdb")
    res = d.resources["graph"]
    assert sorted(res.tenants) == ["contoso", "fabrikam"]
    assert "s3cr3t" not in repr(res) and "s3cr3t" not in str(res)
    secret = res.tenants["contoso"].client_secret
    assert isinstance(secret, dg.EnvVar) and secret.env_var_name == "XTS_SECRET_CONTOSO"
    # What the UI's resource page shows: the variable's name, never its value.
    snap = RepositorySnap.from_def(d.get_repository_def())
    shown = next(r for r in snap.resources if r.name == "graph")
    assert "XTS_SECRET_CONTOSO" in str(shown.configured_values) and "s3cr3t" not in str(shown.configured_values)
    # Outside a run the resource resolves the variable itself; a missing one is one error naming it and the tenant.
    monkeypatch.delenv("XTS_SECRET_CONTOSO")
    with pytest.raises(ValueError, match="tenant contoso: environment variable XTS_SECRET_CONTOSO is not set"):
        res.client("contoso")


def test_missing_secret_is_named_at_config_load_with_exit_code_2(tmp_path, monkeypatch, capsys):
    """`xts sync` checks every credential before anything starts: in well under a second, exit 2."""
    import time

    from xts_pipeline.cli import main

    monkeypatch.delenv("XTS_SECRET_CONTOSO", raising=False)
    monkeypatch.setenv("XTS_SECRET_FABRIKAM", "x")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    cfg = _write(tmp_path, TWO)
    started = time.monotonic()
    assert main(["sync", "--config", str(cfg)]) == 2
    assert time.monotonic() - started < 1.0
    err = capsys.readouterr().err
    assert "XTS_SECRET_CONTOSO" in err and "contoso" in err and "DagsterInvalidConfigError" not in err


def test_pair_sensor_waits_for_a_scheduled_cycle(tmp_path):
    d = build_definitions(_write(tmp_path, TWO), duckdb_path=tmp_path / "x.duckdb")
    sensor = d.resolve_sensor_def("pair_cycle_sensor")
    with dg.DagsterInstance.ephemeral() as instance:
        result = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, definitions=d))
    assert not result.run_requests and "no scheduled cycle" in (result.skip_message or "")
