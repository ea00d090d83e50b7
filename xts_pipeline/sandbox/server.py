"""`xts sandbox serve|seed`: run the sandbox with uvicorn (HTTPS, loopback only) and write DIR/sandbox.json."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import math
import os
import secrets
import signal
import socket
import sqlite3
import sys
import time
from pathlib import Path

import uvicorn

from .app import SandboxApp, raw_asgi
from .clock import SandboxClock
from .handlers import default_partner
from .store import SandboxStore
from .tls import ensure_tls
from .tokens import TokenSigner

log = logging.getLogger("xts.sandbox")


class SandboxConfigError(ValueError):
    """Bad serve/seed arguments; the message says which flag to fix."""


def _check_loopback(host: str) -> None:
    if host == "localhost":
        return
    try:
        ok = ipaddress.ip_address(host).is_loopback
    except ValueError:
        ok = False
    if not ok:
        raise SandboxConfigError(f"--host {host!r} is not a loopback address; the sandbox only binds to "
                                 "127.0.0.1, ::1 or localhost")


def check_serve_args(host: str, port: int, seed: str | None, throttle: str, time_scale: float,
                     faults: str | None) -> None:
    """Reject bad flags before anything touches the state dir, each with one line naming the flag."""
    _check_loopback(host)
    if not 0 <= port <= 65535:
        raise SandboxConfigError(f"--port {port} is out of range; use 0 (any free port) to 65535")
    if seed is not None and seed != "demo" and not Path(seed).is_file():
        raise SandboxConfigError(f"--seed {seed!r}: no such file; pass 'demo' or a seed YAML file "
                                 "(format: xts_pipeline/sandbox/seed/demo_seed.yaml)")
    if throttle not in ("documented", "off"):
        raise SandboxConfigError(f"--throttle {throttle!r} is not known; use 'documented' or 'off'")
    if not (isinstance(time_scale, int | float) and math.isfinite(time_scale) and time_scale > 0):
        raise SandboxConfigError(f"--time-scale {time_scale!r} must be a number > 0, e.g. 60")
    if faults:
        from .faults import FaultSpec, FaultSpecError

        try:
            FaultSpec.parse(faults)
        except FaultSpecError as exc:
            raise SandboxConfigError(f"--faults: {exc}") from None


def _load_seed(spec: str):
    from . import seed as seed_mod

    if spec == "demo":
        return seed_mod.demo_seed()
    path = Path(spec)
    if not path.is_file():
        raise SandboxConfigError(f"--seed {spec!r}: no such file; pass 'demo' or a seed YAML file "
                                 "(format: xts_pipeline/sandbox/seed/demo_seed.yaml)")
    try:
        return seed_mod.load_seed_file(path)
    except seed_mod.SeedError as exc:
        raise SandboxConfigError(f"--seed: {exc}") from None


def apply_seed(store: SandboxStore, spec: str) -> None:
    """Load the demo (or a seed file) into an empty store: tenants, users, groups, partner policies."""
    demo = _load_seed(spec)
    for tenant_seed in demo.tenants:
        store.add_tenant(tenant_seed)
    for p in demo.partner_policies:
        target, partner = store.find_tenant(p.tenant_name), store.find_tenant(p.partner_tenant_name)
        if target is None or partner is None:
            raise SandboxConfigError(f"--seed {spec!r}: partner policy {p.tenant_name}->{p.partner_tenant_name} "
                                     "names a tenant the seed does not define")
        put_partner_policy(store, target, partner, p.is_sync_allowed, p.inbound_auto_consent,
                           p.outbound_auto_consent)


def put_partner_policy(store: SandboxStore, target, partner, sync_allowed: bool = True,
                       inbound_consent: bool = True, outbound_consent: bool = True) -> None:
    """`target`'s cross-tenant access partner setting for `partner` (identity sync + automatic consent)."""
    data = default_partner(partner.tenant_id)
    data["automaticUserConsentSettings"] = {"inboundAllowed": inbound_consent, "outboundAllowed": outbound_consent}
    data["identitySynchronization"] = {"tenantId": partner.tenant_id, "displayName": partner.name,
                                       "userSyncInbound": {"isSyncAllowed": sync_allowed}}
    store.put_partner(target, partner.tenant_id, data)


def sandbox_info(store: SandboxStore, base_url: str, ca_file: Path, admin_key: str) -> dict:
    """The sandbox.json document (see docs/DESIGN.md)."""
    return {
        "base_url": base_url,
        "graph_url": f"{base_url}/v1.0",
        "ca_file": str(Path(ca_file).resolve()),
        "admin_key": admin_key,
        "tenants": [
            {"name": t.name, "tenant_id": t.tenant_id, "domain": t.domain,
             "authority": f"{base_url}/{t.tenant_id}", "client_id": t.client_id, "client_secret": t.client_secret,
             "app_object_id": t.app_object_id, "permissions": list(t.permissions), "user_count": t.user_count}
            for t in store.tenants.values()
        ],
    }


class _Server(uvicorn.Server):
    """uvicorn.Server that shuts down gracefully on SIGINT/SIGTERM without re-raising the signal
    afterwards (uvicorn does), so our own cleanup (clock, sqlite checkpoint, sandbox.json) runs."""

    @contextlib.contextmanager
    def capture_signals(self):
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


SECRET_KEYS = ("client_secret", "admin_key")


def masked(info: dict) -> dict:
    """sandbox.json with its secrets replaced: what may be printed or logged."""
    def scrub(obj):
        if isinstance(obj, dict):
            return {k: ("*** (in sandbox.json)" if k in SECRET_KEYS and v else scrub(v)) for k, v in obj.items()}
        if isinstance(obj, list):
            return [scrub(v) for v in obj]
        return obj
    return scrub(info)


def announcement(info_path: Path, info: dict) -> str:
    """What `serve` prints on stdout once it accepts connections: where sandbox.json is, secrets masked.

    stdout ends up in terminals, CI logs and pipes; the client secrets and the admin key stay in the
    0600 file only."""
    return (f"sandbox ready: {info['base_url']} - connection details in {info_path} (mode 0600; it holds the "
            "client secrets and the admin key)\n" + json.dumps(masked(info), indent=2))


def _write_private(path: Path, text: str) -> None:
    """Atomic write, mode 0600 (the file holds client secrets and the admin key)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # O_CREAT's mode only applies to a new file: a stale .tmp keeps its own
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SandboxConfigError(f"cannot bind {host}:{port} ({exc.strerror}); pick another --port or 0") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(state: str | Path, host: str = "127.0.0.1", port: int = 0, seed: str | None = None,
          throttle: str = "documented", time_scale: float = 1.0, faults: str | None = None,
          fault_seed: int = 0) -> int:
    check_serve_args(host, port, seed, throttle, time_scale, faults)
    state_dir = Path(state).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    info_path = state_dir / "sandbox.json"
    with contextlib.suppress(FileNotFoundError):
        info_path.unlink()
    tls = ensure_tls(state_dir)
    signer = TokenSigner(state_dir)
    store = SandboxStore(state_dir)
    if store.is_empty() and seed:
        started = time.perf_counter()
        apply_seed(store, seed)
        log.info("seeded %s in %.1f s", seed, time.perf_counter() - started)
    admin_key = store.meta_get("admin_key")
    if not admin_key:
        admin_key = secrets.token_urlsafe(24)
        store.meta_set("admin_key", admin_key)
    clock = SandboxClock.resume(store.meta_get("clock"), time_scale)
    for t in store.tenants.values():
        store.purge_expired(t, clock.now())
    sock = _bind(host, port)
    actual_port = sock.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    base_url = f"https://{shown_host}:{actual_port}"
    app = SandboxApp(store, clock, signer, admin_key, throttle=throttle, faults=faults, fault_seed=fault_seed,
                     base_url=base_url)
    loop_impl = "uvloop"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        loop_impl = "asyncio"
    config = uvicorn.Config(raw_asgi(app), ssl_certfile=str(tls.cert_file), ssl_keyfile=str(tls.key_file),
                            http="httptools", loop=loop_impl, lifespan="off", access_log=False,
                            log_level="warning", timeout_keep_alive=75, server_header=False,
                            timeout_graceful_shutdown=1)
    server = _Server(config)

    def write_info() -> str:
        text = json.dumps(sandbox_info(store, base_url, tls.ca_file, admin_key), indent=2)
        _write_private(info_path, text)
        return text

    app.on_tenants_changed = write_info

    async def main() -> None:
        async def announce() -> None:
            while not server.started:
                if server.should_exit:
                    return
                await asyncio.sleep(0.01)
            write_info()
            print(announcement(info_path, sandbox_info(store, base_url, tls.ca_file, admin_key)), flush=True)

        async def keep_clock() -> None:
            while True:
                await asyncio.sleep(1.0)
                store.meta_set("clock", clock.export())

        tasks = [asyncio.create_task(announce()), asyncio.create_task(keep_clock())]
        try:
            await server.serve(sockets=[sock])
        finally:
            for task in tasks:
                task.cancel()

    try:
        if loop_impl == "uvloop":
            import uvloop

            uvloop.run(main())
        else:
            asyncio.run(main())
    finally:
        store.meta_set("clock", clock.export())
        store.close()
        sock.close()
        with contextlib.suppress(FileNotFoundError):
            info_path.unlink()
    return 0


def _one_line(exc: BaseException) -> str:
    """An exception as one line: the message, or the OS error with the path it concerns."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return " ".join(str(exc).split()) or type(exc).__name__


def serve_command(args) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return serve(args.state, args.host, args.port, args.seed, args.throttle, args.time_scale, args.faults,
                     args.fault_seed)
    except (SandboxConfigError, ValueError) as exc:
        print(f"xts sandbox serve: {_one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"xts sandbox serve: --state {args.state}: {_one_line(exc)}", file=sys.stderr)
        return 2


def seed_command(args) -> int:
    """Add one generated tenant to a sandbox's state dir; every bad input is one line and exit 2."""
    from .seed import SeedError, generate_tenant

    started = time.perf_counter()
    try:
        tenant_seed = generate_tenant(args.tenant, args.users, domain=args.domain, seed=args.seed)
    except SeedError as exc:  # its message already names the tenant and the bad value
        print(f"xts sandbox seed: {_one_line(exc)}", file=sys.stderr)
        return 2
    state_dir = Path(args.state)
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        store = SandboxStore(state_dir)
    except (OSError, sqlite3.Error) as exc:
        print(f"xts sandbox seed: --state {args.state}: {_one_line(exc)}", file=sys.stderr)
        return 2
    try:
        partners = [n.strip() for n in (getattr(args, "partners", None) or "").split(",") if n.strip()]
        unknown = [n for n in partners if store.find_tenant(n) is None]
        if unknown:
            raise ValueError(f"--partners names {', '.join(unknown)}, not in this sandbox "
                             f"(it has: {', '.join(sorted(t.name for t in store.tenants.values()))})")
        tenant = store.add_tenant(tenant_seed)
        for name in partners:  # a merger rehearsal: both sides allow sync and automatic consent
            other = store.find_tenant(name)
            put_partner_policy(store, tenant, other)
            put_partner_policy(store, other, tenant)
        running = _refresh_running_info(state_dir, store)
    except (ValueError, sqlite3.Error) as exc:
        print(f"xts sandbox seed: --tenant {args.tenant!r}: {_one_line(exc)}", file=sys.stderr)
        return 2
    finally:
        store.close()
    served = ("the running sandbox serves it now (sandbox.json updated)" if running
              else "start the sandbox to serve it")
    print(f"seeded tenant {tenant.name} ({tenant.tenant_id}, {tenant.domain}) with {tenant.user_count} users in "
          f"{time.perf_counter() - started:.1f} s into {state_dir}"
          + (f", sync allowed with {', '.join(partners)}" if partners else "") + f"; {served}")
    return 0


def _refresh_running_info(state_dir: Path, store: SandboxStore) -> bool:
    """Rewrite a running sandbox's sandbox.json with the tenants now in the store (it reloads them itself)."""
    info_path = state_dir / "sandbox.json"
    try:
        info = json.loads(info_path.read_text())
    except (OSError, ValueError):
        return False  # not running: `serve` writes a fresh one
    fresh = sandbox_info(store, info["base_url"], Path(info["ca_file"]), info["admin_key"])
    _write_private(info_path, json.dumps(fresh, indent=2))
    return True
