"""A first day that works: the README's merger walk-through, run verbatim in a real shell.

The commands are read from README.md's "Rehearse a merger" section (its ```sh blocks, dedented as a
rendered page shows them) and run with `bash -c` from a fresh folder holding the demo sandbox at
`.sandbox/demo`, as a new engineer would paste them: seed a company and write a topology, dry run, a
first load the volume guardrail blocks, the printed `xts approve` command pasted into the shell, then the
apply. Judged from Graph (the sandbox), the store and the Dagster instance: the runs are ordinary runs
with the UI's job origin, and the UI's definitions resolve the same topology and store.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import pytest

from xts_pipeline.sandbox.process import SandboxProcess

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


def readme_blocks() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Rehearse a merger", 1)[1].split("\n## ", 1)[0]
    return [textwrap.dedent(b) for b in re.findall(r"```sh\n(.*?)```", section, flags=re.S)]


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    root = tmp_path_factory.mktemp("first-day")
    bin_dir = root / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "xts"  # the console script `pip install -e .` makes, bound to this checkout
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m xts_pipeline.cli "$@"\n')
    shim.chmod(0o755)
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("XTS_") and k != "DAGSTER_HOME"}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", PYTHONPATH=str(REPO), DAGSTER_HOME=str(home),
               XTS_SYNC_WORKERS="1", XTS_LOG_LEVEL="WARNING")
    with SandboxProcess(root / ".sandbox" / "demo", seed="demo", throttle="off") as sb:
        yield {"root": root, "env": env, "sandbox": sb, "home": home}


def shell(day, script: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", script], cwd=day["root"], env=day["env"], capture_output=True, text=True,
                          timeout=timeout)


def contoso_users(day) -> list[dict]:
    return day["sandbox"].admin("GET", "/tenants/contoso/users")["value"]


def test_readme_walkthrough_verbatim(day):
    blocks = readme_blocks()
    assert len(blocks) == 4, "the walk-through's sh blocks changed: keep this test in step with README.md"
    seed, dry_run, first_load, apply = blocks
    assert "--pairs 'tailspin->contoso'" in first_load  # the README itself quotes the pair

    res = shell(day, seed)
    assert res.returncode == 0, res.stderr
    assert (day["root"] / "my-topology.yaml").is_file()
    before = {u["id"] for u in contoso_users(day)}

    res = shell(day, dry_run)
    assert res.returncode == 1, res.stdout + res.stderr  # the plan would be blocked: the dry run says so
    row = next(line for line in res.stdout.splitlines() if line.startswith("| tailspin->contoso"))
    assert row.rstrip(" |").endswith("blocked") and "Traceback" not in res.stdout + res.stderr
    assert {u["id"] for u in contoso_users(day)} == before  # a dry run writes nothing

    res = shell(day, first_load)
    out = res.stdout
    assert res.returncode == 1, out + res.stderr  # blocked is not ok: non-zero
    row = next(line for line in out.splitlines() if line.startswith("| tailspin->contoso"))
    assert row.rstrip(" |").endswith("blocked")
    assert "Traceback" not in out + res.stderr  # an expected outcome, not a crash
    printed = next(line.split("to approve it: ", 1)[1] for line in out.splitlines() if "to approve it: " in line)
    assert printed.startswith("xts approve --config my-topology.yaml --pair 'tailspin->contoso' --plan ")
    assert out.count("to approve it:") == 1  # one hint, not one per message
    assert out.count("xts approve") == 1, out  # the guardrail's message points at it instead of repeating it
    assert {u["id"] for u in contoso_users(day)} == before

    # Paste it into a real shell, with a reason instead of "...".
    res = shell(day, printed.replace("--reason ...", "--reason 'merger day-1 load'"))
    assert res.returncode == 0, res.stderr
    assert "approved plan" in res.stdout and str(day["root"] / "xts.duckdb") in res.stdout

    res = shell(day, apply)
    assert res.returncode == 0, res.stdout + res.stderr
    row = next(line for line in res.stdout.splitlines() if line.startswith("| tailspin->contoso"))
    assert row.rstrip(" |").endswith("ok")
    created = [u for u in contoso_users(day) if u["id"] not in before]
    assert len(created) > 100  # the whole approved first load, beyond the 100-per-cycle cap
    assert "Success" in res.stdout  # `xts log --status Success` lists the writes
    status_row = next(line for line in res.stdout.splitlines() if line.startswith("| tailspin->contoso"))
    assert status_row


def test_cli_runs_are_ordinary_runs_with_the_ui_job_origin(day):
    """Re-execute, the job's Runs tab and the Overview timeline need the run's remote origin and repo label."""
    with dg.DagsterInstance.from_config(str(day["home"])) as instance:
        runs = instance.get_runs(filters=dg.RunsFilter(job_name="pair_sync_job"))
        # The job's Runs tab filters on the job name and the repository label (dagster_graphql's resolve_runs).
        in_tab = instance.get_runs(filters=dg.RunsFilter(
            job_name="pair_sync_job", tags={".dagster/repository": "__repository__@xts_pipeline"}))
    assert len(runs) == 2 and {r.run_id for r in in_tab} == {r.run_id for r in runs}
    for run in runs:
        assert run.remote_job_origin is not None and run.remote_job_origin.location_name == "xts_pipeline"
        assert run.remote_job_origin.job_name == "pair_sync_job"
        assert run.tags["xts/pair"] == "tailspin->contoso" and run.tags["dagster/partition"] == "tailspin__contoso"


def test_ui_definitions_resolve_the_same_topology_and_store(day, monkeypatch):
    """What `make demo CONFIG=my-topology.yaml` exports: the UI gets the new partitions and the CLI's store."""
    from assets import definitions

    monkeypatch.chdir(day["root"])
    monkeypatch.delenv("XTS_DUCKDB", raising=False)
    monkeypatch.delenv("XTS_HOME", raising=False)
    monkeypatch.setenv("XTS_CONFIG", str(day["root"] / "my-topology.yaml"))
    monkeypatch.setenv("XTS_SANDBOX", str(day["root"] / ".sandbox" / "demo"))
    defs = definitions.defs()
    assert Path(defs.resources["duckdb"].path) == day["root"] / "xts.duckdb"
    plan = defs.resolve_assets_def("provisioning_plan")
    assert plan.partitions_def.get_partition_keys() == ["tailspin__contoso"]


def test_provision_on_demand_prints_entras_steps(day):
    """Entra's on-demand page: import, scope, match, action with old -> new; here from the CLI, one user only."""
    res = shell(day, "xts log --config my-topology.yaml --pair tailspin__contoso --action create --status Success "
                     "--format json --limit 500")
    assert res.returncode == 0, res.stderr
    created = json.loads(res.stdout)
    assert created and all(r["status"] == "Success" and r["pair"] == "tailspin->contoso" for r in created)
    upn = created[0]["user"]
    src = next(u for u in day["sandbox"].admin("GET", "/tenants/tailspin/users")["value"]
               if u["userPrincipalName"] == upn)
    other = next(u for u in day["sandbox"].admin("GET", "/tenants/tailspin/users")["value"]
                 if u["userPrincipalName"] == created[1]["user"])
    for u, title in ((src, "On Demand Title"), (other, "Next Cycle Title")):
        day["sandbox"].admin("PATCH", f"/tenants/tailspin/users/{u['id']}", json={"jobTitle": title})

    res = shell(day, f"xts provision --config my-topology.yaml --sandbox .sandbox/demo --pair 'tailspin->contoso' "
                     f"--user {upn}")
    out = res.stdout
    assert res.returncode == 0, out + res.stderr
    for step in ("1. Import user: Success", "2. Determine if user is in scope: Success",
                 "3. Match user between source and target: Success", "Perform action: Success"):
        assert step in out, out
    assert "linked" in out and "-> 'On Demand Title'" in out and "internal member" in out
    titles = {u.get("jobTitle") for u in contoso_users(day)}
    assert "On Demand Title" in titles and "Next Cycle Title" not in titles  # one user, not the pair

    res = shell(day, "xts provision --config my-topology.yaml --sandbox .sandbox/demo --pair tailspin__contoso "
                     "--user nobody@tailspin.example")
    assert res.returncode == 1 and "1. Import user: Failure" in res.stdout and "nobody@tailspin.example" in res.stdout


def test_status_and_log_read_the_same_store(day):
    res = shell(day, "xts status --config my-topology.yaml --format json")
    assert res.returncode == 0, res.stderr
    (row,) = json.loads(res.stdout)
    assert row["pair"] == "tailspin->contoso" and row["quarantine"] == "" and row["failed"] == 0
    res = shell(day, "xts log --config my-topology.yaml --status Skipped --format csv")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == "logged_at,cycle_id,pair,kind,action,status,user,target_user_id,detail"
    res = shell(day, "xts log --config my-topology.yaml --pair 'tailspin->nowhere'")
    assert res.returncode == 2 and "tailspin->nowhere" in res.stderr


def test_the_ui_can_re_execute_a_cli_run(day, monkeypatch):
    """What the UI's "Re-execute all" does (create_reexecuted_run through the workspace `dagster dev` loads),
    on a run `xts sync` made: it used to fail with "Expected non-None value ... remote_job_origin"."""
    from dagster._core.execution.plan.resume_retry import ReexecutionStrategy
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    monkeypatch.setenv("DAGSTER_HOME", str(day["home"]))
    monkeypatch.setenv("XTS_CONFIG", str(day["root"] / "my-topology.yaml"))
    monkeypatch.setenv("XTS_SANDBOX", str(day["root"] / ".sandbox" / "demo"))
    monkeypatch.delenv("XTS_DUCKDB", raising=False)
    with dg.DagsterInstance.from_config(str(day["home"])) as instance:
        parent = instance.get_runs(filters=dg.RunsFilter(job_name="pair_sync_job"), limit=1)[0]
        with WorkspaceProcessContext(instance, WorkspaceFileTarget([str(REPO / "workspace.yaml")])) as ctx:
            request = ctx.create_request_context()
            location = request.get_code_location(parent.remote_job_origin.location_name)
            job = location.get_repository(parent.remote_job_origin.repository_origin.repository_name) \
                .get_full_job(parent.job_name)
            child = instance.create_reexecuted_run(
                request_context=request, parent_run=parent, code_location=location, remote_job=job,
                strategy=ReexecutionStrategy.ALL_STEPS, use_parent_run_tags=True)
    assert child.parent_run_id == parent.run_id and child.remote_job_origin is not None
    assert child.tags["dagster/partition"] == "tailspin__contoso"
