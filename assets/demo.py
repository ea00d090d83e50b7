"""`make demo [CONFIG=my-topology.yaml]`: the merger demo on a local Graph sandbox, then the Dagster UI.

1. start the sandbox with the demo tenants in <repo>/.sandbox/demo (git-ignored; kept between demos);
2. run one full sync cycle for every pair of the topology (the packaged demo, or `--config`) and print
   the summary;
3. start `dagster dev` on 127.0.0.1:3000 over the same topology, store and sandbox (xts_pipeline.paths,
   exported as XTS_CONFIG / XTS_SANDBOX), so the UI, `xts sync --config ...` and `xts approve --config ...`
   in another shell all share one DuckDB file. Ctrl-C stops both.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

from xts_pipeline import paths

REPO = paths.REPO_ROOT
STATE = REPO / ".sandbox" / "demo"


def demo_env(state: Path, config: str | None = None) -> dict[str, str]:
    """What `dagster dev` and the cycle need: instance home, topology, sandbox (the store follows by rule)."""
    resolved, _ = paths.resolve(config, state)
    return {"DAGSTER_HOME": str(paths.dagster_home()), **resolved.env()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=None, help="topology YAML (default: $XTS_CONFIG, else the packaged demo)")
    parser.add_argument("--no-ui", action="store_true", help="run the cycle, print the summary, exit")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    from xts_pipeline.config import ConfigError
    from xts_pipeline.sandbox.process import SandboxProcess

    print(f"starting the Graph sandbox (demo tenants) in {STATE} ...", flush=True)
    with SandboxProcess(STATE, seed="demo") as sandbox:
        print(f"sandbox up at {sandbox.info['base_url']}: "
              + ", ".join(f"{t['name']} ({t.get('user_count', '?')} users)" for t in sandbox.info["tenants"]),
              flush=True)
        try:
            env = demo_env(STATE, args.config)
            resolved, _ = paths.resolve(args.config, STATE)
        except ConfigError as exc:
            print(f"make demo: {exc}", file=sys.stderr)
            return 2
        os.environ.update(env)
        print(f"topology {resolved.config} ({resolved.origin}); store {resolved.duckdb}; "
              f"instance {env['DAGSTER_HOME']}", flush=True)
        from assets.cycle import sync_in_process
        from assets.summary import format_summary

        print("running one sync cycle for every pair of the topology ...", flush=True)
        outcomes = sync_in_process(resolved.config, str(STATE), str(resolved.duckdb), None, dry_run=False)
        print(format_summary(outcomes, resolved), flush=True)
        if args.no_ui:
            return 1 if any(o.status not in ("ok", "planned") for o in outcomes) else 0
        print("starting Dagster on http://127.0.0.1:3000 (Ctrl-C stops Dagster and the sandbox); in another "
              "shell, commands that should reach this store take "
              + (f"--config {paths.display_path(resolved.config)}" if not resolved.is_demo else "no --config"),
              flush=True)
        ui = subprocess.Popen([sys.executable, "-m", "dagster", "dev", "-w", str(REPO / "workspace.yaml"),
                               "-h", "127.0.0.1", "-p", "3000"], cwd=str(REPO), env={**os.environ, **env})
        try:
            return ui.wait()
        except KeyboardInterrupt:
            ui.send_signal(signal.SIGINT)
            try:
                ui.wait(30)
            except subprocess.TimeoutExpired:
                ui.kill()
            return 0


if __name__ == "__main__":
    sys.exit(main())
