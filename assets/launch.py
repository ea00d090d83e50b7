"""Run one job of the definitions in this process as an ordinary Dagster run, with a job origin.

`JobDefinition.execute_in_process` creates runs without a remote job origin: the UI then cannot
re-execute them ("Expected non-None value ... remote_job_origin"), the job's Runs tab does not list
them (it filters on the `.dagster/repository` tag an origin brings) and the Overview timeline omits
them. This does what `execute_in_process` does (Dagster 1.13's `core_execute_in_process`: an ephemeral
in-process job, the partition's tags, one `create_run_for_job`, the plan iterated here) but creates
the run with the origin of the code location `dagster dev` serves (workspace.yaml, location
`xts_pipeline`), exactly as `dagster job launch` would record it. Re-executing such a run from the UI
runs the location's own job there.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster._core.definitions.job_base import InMemoryJob
from dagster._core.definitions.reconstruct import ReconstructableJob, ReconstructableRepository
from dagster._core.definitions.repository_definition.valid_definitions import SINGLETON_REPOSITORY_NAME
from dagster._core.execution.api import (
    ExecuteRunWithPlanIterable,
    create_execution_plan,
    job_execution_iterator,
)
from dagster._core.execution.context_creation_job import (
    PlanOrchestrationContextManager,
    orchestration_context_event_generator,
)
from dagster._core.execution.execute_in_process import merge_run_tags
from dagster._core.execution.execute_in_process_result import ExecuteInProcessResult
from dagster._core.remote_origin import (
    ManagedGrpcPythonEnvCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

from xts_pipeline.paths import DEFINITIONS_MODULE, LOCATION_NAME, REPO_ROOT


def remote_origin(job_name: str) -> RemoteJobOrigin:
    """The origin the UI gives this job: module assets.definitions in location `xts_pipeline`."""
    target = LoadableTargetOrigin(executable_path=sys.executable, module_name=DEFINITIONS_MODULE,
                                  working_directory=str(REPO_ROOT))
    location = ManagedGrpcPythonEnvCodeLocationOrigin(loadable_target_origin=target, location_name=LOCATION_NAME)
    return RemoteJobOrigin(RemoteRepositoryOrigin(location, SINGLETON_REPOSITORY_NAME), job_name)


def python_origin(job_name: str) -> Any:
    repo = ReconstructableRepository.for_module(DEFINITIONS_MODULE, "defs", working_directory=str(REPO_ROOT))
    return ReconstructableJob(repo, job_name).get_python_origin()


def execute(defs: dg.Definitions, instance: dg.DagsterInstance, job_name: str, *, partition_key: str | None,
            tags: Mapping[str, str], run_config: Mapping[str, Any] | None = None) -> ExecuteInProcessResult:
    """Run `job_name` for `partition_key` in this process; the run carries the UI's job origin."""
    job_def = defs.resolve_job_def(job_name)
    ephemeral = job_def.as_ephemeral_job(resource_defs={}, input_values={})
    run_config = dict(run_config or {})
    run_tags = merge_run_tags(job_def=job_def, partition_key=partition_key, tags=tags, asset_selection=None,
                              instance=instance, run_config=run_config)
    job = InMemoryJob(job_def=ephemeral)
    plan = create_execution_plan(job, run_config=run_config, instance_ref=instance.get_ref())
    run = instance.create_run_for_job(
        job_def=ephemeral, run_config=run_config, tags={**ephemeral.run_tags, **run_tags}, execution_plan=plan,
        remote_job_origin=remote_origin(job_name), job_code_origin=python_origin(job_name))
    events = list(ExecuteRunWithPlanIterable(
        execution_plan=plan, iterator=job_execution_iterator,
        execution_context_manager=PlanOrchestrationContextManager(
            context_event_generator=orchestration_context_event_generator, job=job, execution_plan=plan,
            dagster_run=run, instance=instance, run_config=run_config, executor_defs=None, output_capture=None,
            raise_on_error=False)))
    return ExecuteInProcessResult(job_def=ephemeral, event_list=events,
                                  dagster_run=instance.get_run_by_id(run.run_id), output_capture={})
