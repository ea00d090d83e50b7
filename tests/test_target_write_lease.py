"""One pair per target writes at a time, in every path.

The daemon's pair runs are queued by the `xts/target` tag limit in dagster_home/dagster.yaml; runs that
bypass the queue (the CLI's in-process runs, a materialization from the UI) meet the apply step's
`write:<target>` lease. Both are exercised here with real Dagster and a real store.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import yaml

from assets import lease_hook
from xts_pipeline import lease

REPO = Path(__file__).resolve().parents[1]


def _writer_job(db: str, seen: list) -> dg.JobDefinition:
    @dg.op
    def write_into_fabrikam(context) -> None:  # noqa: ANN001 - Dagster reads the annotation
        with lease_hook.target_write_step(context, db, "fabrikam"):
            seen.append(lease.current(db, "write:fabrikam"))

    @dg.job
    def writer() -> None:
        write_into_fabrikam()

    return writer


def test_an_apply_holds_the_target_and_frees_it(tmp_path):
    db = str(tmp_path / "x.duckdb")
    seen: list = []
    result = _writer_job(db, seen).execute_in_process()
    assert result.success
    assert seen[0] is not None and seen[0].owner == result.run_id  # held by the run, not its cycle
    assert lease.current(db, "write:fabrikam") is None


def test_a_second_writer_into_the_same_target_waits_then_fails_naming_the_holder(tmp_path, monkeypatch):
    db = str(tmp_path / "x.duckdb")
    lease.acquire(db, "write:fabrikam", "other-run", "Dagster run other (pair_sync_job)", wait_s=0)
    monkeypatch.setattr(lease_hook, "TARGET_WRITE_WAIT_S", 0.3)
    seen: list = []
    result = _writer_job(db, seen).execute_in_process(raise_on_error=False)
    assert not result.success and seen == []  # nothing was written
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.user_failure_data.description
    assert "fabrikam" in message and "busy" in message
    assert "Dagster run other (pair_sync_job)" in message, message  # it names who holds the target
    lease.release(db, "write:fabrikam", "other-run")


def test_the_run_queue_limits_pair_runs_to_one_per_target():
    cfg = yaml.safe_load((REPO / "dagster_home" / "dagster.yaml").read_text())
    limits = cfg["concurrency"]["runs"]["tag_concurrency_limits"]
    assert {"key": "xts/target", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits
    with dg.instance_for_test(overrides={"concurrency": cfg["concurrency"]}) as instance:
        # The instance accepts the committed concurrency section as it stands.
        assert instance.get_concurrency_config().run_queue_config.tag_concurrency_limits[0]["key"] == "xts/target"

