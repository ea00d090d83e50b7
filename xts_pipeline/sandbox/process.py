"""SandboxProcess: run `xts sandbox serve` as a subprocess for tests, the demo and benches.

A real server in a real process, so clients go through TLS, sockets and the real uvicorn stack.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

_PROJECT_ROOT = Path(__file__).resolve().parents[2]


class SandboxError(RuntimeError):
    """The sandbox subprocess failed to start/stop, or an admin call failed."""


class SandboxProcess:
    """Context manager around one sandbox server subprocess whose state lives in `state_dir`."""

    def __init__(self, state_dir: str | Path, seed: str | None = "demo", throttle: str = "off",
                 time_scale: float = 1.0, faults: str | None = None, fault_seed: int = 0, *,
                 host: str = "127.0.0.1", port: int = 0, startup_timeout: float = 60.0) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.seed, self.throttle, self.time_scale = seed, throttle, time_scale
        self.faults, self.fault_seed = faults, fault_seed
        self.host, self.port, self.startup_timeout = host, port, startup_timeout
        self.proc: subprocess.Popen | None = None
        self._info: dict | None = None
        self._session: requests.Session | None = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"SandboxProcess({str(self.state_dir)!r}, port={self.port}, {state})"

    # ---- lifecycle ----------------------------------------------------------------------------
    @property
    def info_path(self) -> Path:
        return self.state_dir / "sandbox.json"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _command(self, port: int) -> list[str]:
        cmd = [sys.executable, "-m", "xts_pipeline.cli", "sandbox", "serve", "--state", str(self.state_dir),
               "--host", self.host, "--port", str(port), "--throttle", self.throttle,
               "--time-scale", repr(float(self.time_scale)), "--fault-seed", str(int(self.fault_seed))]
        if self.seed:
            cmd += ["--seed", str(self.seed)]
        if self.faults:
            cmd += ["--faults", self.faults]
        return cmd

    def start(self) -> SandboxProcess:
        if self.running:
            return self
        self.state_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._launch(self.port)
        except SandboxError:
            if not self.port:
                raise
            self._launch(0)  # the old port is taken: any port will do
        return self

    def _launch(self, port: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.info_path.unlink()  # a stale file from a killed run must not be mistaken for readiness
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_PROJECT_ROOT), env.get("PYTHONPATH")]))
        log = open(self.state_dir / "sandbox.log", "ab")  # noqa: SIM115 - handed to the child
        # stdout repeats sandbox.json (client secrets, admin key): keep it private like sandbox.json
        out_fd = os.open(self.state_dir / "sandbox.out", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(out_fd, 0o600)  # also when an older run left the file with a wider mode
        out = os.fdopen(out_fd, "wb")
        try:
            self.proc = subprocess.Popen(self._command(port), stdout=out, stderr=log, stdin=subprocess.DEVNULL,
                                         cwd=str(_PROJECT_ROOT), env=env)
        finally:
            log.close()
            out.close()
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SandboxError(f"sandbox in {self.state_dir} exited with code {self.proc.returncode} while "
                                   f"starting; see {self.state_dir / 'sandbox.log'}:\n{self._log_tail()}")
            if self.info_path.exists():
                try:
                    self._info = json.loads(self.info_path.read_text())
                    break
                except json.JSONDecodeError:
                    pass
            time.sleep(0.05)
        else:
            self.kill()
            raise SandboxError(f"sandbox in {self.state_dir} did not write sandbox.json within "
                               f"{self.startup_timeout:.0f} s; see {self.state_dir / 'sandbox.log'}")
        self.port = int(self._info["base_url"].rsplit(":", 1)[1])
        self._session = None

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join((self.state_dir / "sandbox.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 20.0) -> None:
        """Graceful stop (SIGTERM); SIGKILL if it does not exit in time."""
        if self.proc is None:
            return
        if self._session is not None:  # idle keep-alive TLS connections would slow the graceful close
            self._session.close()
            self._session = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: simulate a crash (state must still survive)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def restart(self) -> SandboxProcess:
        """Stop and start on the same state dir (and the same port when it is free)."""
        self.stop()
        return self.start()

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- access -------------------------------------------------------------------------------
    @property
    def info(self) -> dict:
        if self._info is None:
            raise SandboxError(f"sandbox in {self.state_dir} is not started; call start() or use it as a "
                               "context manager")
        return self._info

    def refresh(self) -> dict:
        """Re-read sandbox.json (the server rewrites it when it picks up newly seeded tenants)."""
        self._info = json.loads(self.info_path.read_text())
        return self._info

    def tenant(self, name: str) -> dict:
        for t in self.info["tenants"]:
            if name in (t["name"], t["tenant_id"], t["domain"]):
                return t
        raise SandboxError(f"tenant {name!r} is not in {self.info_path}; known: "
                           f"{', '.join(t['name'] for t in self.info['tenants'])}")

    def connection(self, name: str, **over: Any):
        """An xts_pipeline.graph.TenantConnection for tenant `name`'s app; `over` replaces fields."""
        from xts_pipeline.graph import TenantConnection  # the sandbox itself does not need the client

        t = self.tenant(name)
        args = dict(name=t["name"], tenant_id=t["tenant_id"], authority=t["authority"],
                    graph_url=self.info["graph_url"], client_id=t["client_id"], client_secret=t["client_secret"],
                    ca_file=self.info["ca_file"])
        return TenantConnection(**{**args, **over})

    def session(self) -> requests.Session:
        """A requests.Session that trusts the sandbox CA (trust_env off: REQUESTS_CA_BUNDLE would win)."""
        if self._session is None:
            s = requests.Session()
            s.trust_env = False
            s.verify = self.info["ca_file"]
            self._session = s
        return self._session

    def token(self, name: str) -> str:
        """A client-credentials access token for one tenant's app (plain OAuth POST)."""
        t = self.tenant(name)
        r = self.session().post(f"{t['authority']}/oauth2/v2.0/token", data={
            "grant_type": "client_credentials", "client_id": t["client_id"], "client_secret": t["client_secret"],
            "scope": "https://graph.microsoft.com/.default"}, timeout=30)
        if r.status_code != 200:
            raise SandboxError(f"token request for tenant {name!r} failed: {r.status_code} "
                               f"{r.json().get('error_description', '')[:200]}")
        return r.json()["access_token"]

    def admin(self, method: str, path: str, json: Any = None) -> Any:
        """Call an admin route (`/_sandbox/...`); returns the parsed JSON body."""
        path = path.lstrip("/")
        if path.startswith("_sandbox/"):  # accept "/_sandbox/state" as well as "state"
            path = path[len("_sandbox/"):]
        url = f"{self.info['base_url']}/_sandbox/{path}"
        r = self.session().request(method, url, json=json, headers={"X-Sandbox-Admin": self.info["admin_key"]},
                                   timeout=60)
        if r.status_code >= 400:
            raise SandboxError(f"admin {method} {path} on sandbox {self.state_dir} failed: {r.status_code} {r.text[:300]}")
        return r.json()
