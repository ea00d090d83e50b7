"""`make demo`: the merger demo on a local Graph sandbox, then the Dagster UI.

1. start the sandbox with the demo tenants in <repo>/.sandbox/demo (git-ignored; kept between demos);
2. run one full sync cycle for every pair of the packaged demo topology and print the summary;
3. start `dagster dev` on 127.0.0.1:3000 with the sandbox still running. Ctrl-C stops both.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def demo_env(state: Path) -> dict[str, str]:
    """What `dagster dev` and the cycle need: instance home, topology, sandbox, staging file."""
    from xts_pipeline.config import default_config_path

    home = REPO / "dagster_home"
    home.mkdir(exist_ok=True)
    return {
        "DAGSTER_HOME": str(home),
        "XTS_CONFIG": str(default_config_path()),
        "XTS_SANDBOX": str(state),
        "XTS_DUCKDB": str(home / "xts.duckdb"),
    }


def main(argv: list[str] | None = None) -> int:
    from xts_pipeline.sandbox.process import SandboxProcess

    state = REPO / ".sandbox" / "demo"
    env = demo_env(state)
    os.environ.update(env)
    print(f"starting the Graph sandbox (demo tenants) in {state} ...", flush=True)
    with SandboxProcess(state, seed="demo") as sandbox:
        print(f"sandbox up at {sandbox.info['base_url']}: "
              + ", ".join(f"{t['name']} ({t.get('user_count', '?')} users)" for t in sandbox.info["tenants"]),
              flush=True)
        from assets.cycle import format_summary, sync_in_process

        print("running one sync cycle for every pair of the demo topology ...", flush=True)
        outcomes = sync_in_process(env["XTS_CONFIG"], str(state), env["XTS_DUCKDB"], None, dry_run=False)
        print(format_summary(outcomes), flush=True)
        if "--no-ui" in (argv or sys.argv[1:]):
            return 1 if any(o.errors or o.failed_checks or o.quarantined for o in outcomes) else 0
        print("starting Dagster on http://127.0.0.1:3000 (Ctrl-C stops Dagster and the sandbox)", flush=True)
        ui = subprocess.Popen([sys.executable, "-m", "dagster", "dev", "-h", "127.0.0.1", "-p", "3000"],
                              cwd=str(REPO), env={**os.environ, **env})
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
