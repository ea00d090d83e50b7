"""`xts provision --pair SRC->DST --user UPN|id|mail`: Entra's "Provision on demand" from the command line.

Runs, as ordinary Dagster runs of the UI's jobs: the source's extraction (a delta round, so this user's
latest change is read), the target's snapshot, then `provision_one_user_job` with `only_user` (plan,
guardrail checks and apply for that user only). Then prints Entra's steps (xts_pipeline.on_demand):
import, scope evaluation with each filter clause's result, match with why, guardrail verdicts, and the
action with old -> new values. The run's `applied_changes` metadata carries the same steps.
Exit codes: 0 written or nothing to do, 1 held, blocked, failed or not found, 2 configuration problem.
"""

from __future__ import annotations

import sys
from typing import Any


def provision_command(args: Any) -> int:
    from xts_pipeline import on_demand, paths, preflight
    from xts_pipeline.config import ConfigError

    try:
        resolved, topology = paths.resolve(args.config, args.sandbox)
        pair = topology.pair(args.pair)
        if not resolved.sandbox:
            preflight.check_credentials(topology, [pair.source, pair.target])
    except ConfigError as exc:
        print(f"xts provision: {exc}", file=sys.stderr)
        return 2
    if not args.user.strip():
        print("xts provision: --user is empty; give the source user's UPN, object id or mail", file=sys.stderr)
        return 2
    paths.dagster_home()
    from assets import launch
    from assets.cycle import _console_config, _failures, cli_instance, cycle_tags
    from assets.definitions import build_definitions

    sandbox = str(resolved.sandbox) if resolved.sandbox else None
    with paths.exported(resolved.env()):
        defs = build_definitions(resolved.config, sandbox, resolved.duckdb)
        tags = {**cycle_tags(), "xts/kind": "on-demand", "xts/pair": pair.name, "xts/source": pair.source,
                "xts/target": pair.target, "xts/user": args.user}
        with cli_instance() as instance:
            for job, key in (("source_job", pair.source), ("target_job", pair.target)):
                res = launch.execute(defs, instance, job, partition_key=key, tags=tags, run_config=_console_config())
                if not res.success:
                    print(f"xts provision: {job} for {key} failed: " + "; ".join(_failures(res)), file=sys.stderr)
                    return 1
            res = launch.execute(defs, instance, "provision_one_user_job", partition_key=pair.key, tags=tags,
                                 run_config={**_console_config(), "ops": {"provisioning_plan": {
                                     "config": {"only_user": args.user}}}})
            errors = _failures(res)
    steps = on_demand.explain(resolved.duckdb, topology, pair.key, args.user)
    print(f"provision on demand: {args.user} in {pair.name} (run {res.run_id}; store {resolved.duckdb})")
    print(on_demand.render(steps))
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    bad = {"Failure", "Held", "Blocked", "Not run"}
    return 1 if errors or any(s.outcome in bad for s in steps) else 0
