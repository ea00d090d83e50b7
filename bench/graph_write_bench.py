"""Write-budget benchmark: BatchWriter vs one-user-at-a-time, against the sandbox's documented throttling.

Prints apply throughput as a fraction of the write budget (3,000 writes / 150 s per app and tenant;
goal >= 0.9), the same workload done sequentially the way common PowerShell sync scripts do it
(one POST /invitations, then one PATCH, no batching, no parallelism, sleeping on Retry-After), the
ratio, and the 429 counts. The sandbox clock runs `--time-scale` times faster than real time, so
one 150 s window lasts 150/scale real seconds. `--rtt-ms` adds an emulated network round trip (in
sandbox milliseconds, i.e. divided by the scale in real time) before every HTTP request of both
clients: a loopback server answers in ~1 ms, Graph in ~100 ms.

Steady state: the first window starts empty, so any client can burst 3,000 writes at once; the
bench warms up for `--warmup-windows` windows and measures the following `--measure-windows`.

    .venv/bin/python bench/graph_write_bench.py --time-scale 10
"""

from __future__ import annotations

import argparse
import atexit
import itertools
import shutil
import tempfile
import threading
import time
from pathlib import Path

from requests.adapters import HTTPAdapter

from xts_pipeline.graph import GraphClient
from xts_pipeline.graph.odata import eq
from xts_pipeline.graph.retry import parse_retry_after
from xts_pipeline.graph.writer import BatchWriter, WriteOp
from xts_pipeline.sandbox.process import SandboxProcess

BUDGET, WINDOW = 3000, 150.0
PERMS = ["User.Read.All", "User.ReadWrite.All", "User.Invite.All", "Group.Read.All", "Policy.Read.All",
         "Application.Read.All", "Application.ReadWrite.OwnedBy"]


class SlowAdapter(HTTPAdapter):
    """Emulated network round trip before each request (bench harness only)."""

    def __init__(self, delay_s: float, **kw) -> None:
        super().__init__(**kw)
        self.delay_s = delay_s

    def send(self, *a, **kw):  # type: ignore[override]
        if self.delay_s:
            time.sleep(self.delay_s)
        return super().send(*a, **kw)


def client_for(sb: SandboxProcess, name: str, delay_s: float) -> GraphClient:
    sb.admin("PUT", f"/_sandbox/tenants/{name}/permissions", json={"permissions": PERMS})
    c = GraphClient(sb.connection(name))
    c.session.mount("https://", SlowAdapter(delay_s, pool_maxsize=32, max_retries=0))
    return c


def create_ops(tag: str, ext: dict[str, str], deadline: float):
    for i in itertools.count():
        if time.monotonic() >= deadline:
            return
        src = f"{tag}-{i}"
        yield WriteOp(op_id=src, kind="create",
                      invitation={"invitedUserEmailAddress": f"{tag}{i}@bench.example",
                                  "invitedUserDisplayName": f"Bench {i}", "invitedUserType": "Member"},
                      patch={"department": "Bench", ext["xtsSourceObjectId"]: src},
                      lookup_filter=str(eq(ext["xtsSourceObjectId"], src)))


def run_batch(client: GraphClient, ext, scale: float, warmup: int, measure: int) -> dict:
    window_real = WINDOW / scale
    start = time.monotonic()
    t_warm, t_end = start + warmup * window_real, start + (warmup + measure) * window_real
    writer = BatchWriter(client)
    marks: dict[str, tuple[float, int]] = {}

    def sample() -> None:
        for name, when in (("warm", t_warm), ("end", t_end)):
            time.sleep(max(0.0, when - time.monotonic()))
            marks[name] = (time.monotonic(), writer.stats.writes_accepted)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    outcomes = list(writer.run(create_ops("b", ext, t_end)))
    th.join()
    (tw, ww), (te, we) = marks["warm"], marks["end"]
    rate = (we - ww) / ((te - tw) * scale)  # writes per sandbox second
    return {"fraction": rate / (BUDGET / WINDOW), "writes": we - ww, "all_writes": writer.stats.writes_accepted,
            "overall_fraction": writer.stats.writes_accepted / ((time.monotonic() - start) * scale) / (BUDGET / WINDOW),
            "throttled": writer.stats.throttled, "ops": len(outcomes),
            "failed": sum(o.status != "success" for o in outcomes), "max_rate": writer.controller.stats.max_rate}


def run_sequential(client: GraphClient, ext, scale: float, seconds: float) -> dict:
    """One user at a time: POST /invitations, then PATCH; on 429 sleep Retry-After and try again."""
    deadline = time.monotonic() + seconds
    writes = throttled = 0
    start = time.monotonic()

    def call(method: str, path: str, body: dict) -> dict | None:
        nonlocal writes, throttled
        while True:
            r = client.send(method, client.url(path), json_body=body)
            if r.status_code == 429:
                throttled += 1
                time.sleep(parse_retry_after(r.headers.get("Retry-After")) or 1.0)
                continue
            r.raise_for_status()
            writes += 1
            return r.json() if r.content else None

    for i in itertools.count():
        if time.monotonic() >= deadline:
            break
        inv = call("POST", "invitations", {"invitedUserEmailAddress": f"s{i}@bench.example",
                                           "inviteRedirectUrl": "https://myapps.microsoft.com",
                                           "sendInvitationMessage": False, "invitedUserType": "Member"})
        uid = inv["invitedUser"]["id"]
        call("PATCH", f"users/{uid}", {"department": "Bench", ext["xtsSourceObjectId"]: f"s-{i}"})
    elapsed = time.monotonic() - start
    rate = writes / (elapsed * scale)
    return {"fraction": rate / (BUDGET / WINDOW), "writes": writes, "throttled": throttled}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time-scale", type=float, default=10.0)
    ap.add_argument("--warmup-windows", type=int, default=1)
    ap.add_argument("--measure-windows", type=int, default=2)
    ap.add_argument("--sequential-windows", type=float, default=1.0)
    ap.add_argument("--rtt-ms", type=float, default=100.0, help="emulated round trip, sandbox ms")
    ap.add_argument("--state", default=None)
    args = ap.parse_args()
    scale = args.time_scale
    delay = args.rtt_ms / 1000.0 / scale
    state = Path(args.state or tempfile.mkdtemp(prefix="xts-write-bench-"))
    if not args.state:  # a temporary sandbox state goes when the bench ends
        atexit.register(shutil.rmtree, state, ignore_errors=True)
    with SandboxProcess(state, seed="demo", throttle="documented", time_scale=scale) as sb:
        names = ["xtsSourceTenantId", "xtsSourceObjectId", "xtsSyncConfig"]
        seq_client = client_for(sb, "fabrikam", delay)
        seq_ext = seq_client.ensure_extensions(sb.tenant("fabrikam")["app_object_id"], names)
        seq = run_sequential(seq_client, seq_ext, scale, args.sequential_windows * WINDOW / scale)
        client = client_for(sb, "contoso", delay)
        ext = client.ensure_extensions(sb.tenant("contoso")["app_object_id"], names)
        res = run_batch(client, ext, scale, args.warmup_windows, args.measure_windows)
        seq_client.close()
        client.close()
        sb.session().close()
    print(f"sandbox: documented throttling, time scale {scale:g} (150 s window = {WINDOW / scale:.1f} s real), "
          f"emulated RTT {args.rtt_ms:g} ms")
    print(f"batch writer : {res['fraction']:.3f} of the write budget in steady state "
          f"({res['writes']} writes over {args.measure_windows} windows after {args.warmup_windows} warm-up); "
          f"overall incl. the empty first window {res['overall_fraction']:.3f}; "
          f"429s {res['throttled']} of {res['all_writes']} writes; {res['ops']} creates, {res['failed']} failed")
    print(f"sequential   : {seq['fraction']:.3f} of the write budget ({seq['writes']} writes), 429s {seq['throttled']}")
    ratio = res["fraction"] / seq["fraction"] if seq["fraction"] else float("inf")
    print(f"ratio batch/sequential: {ratio:.1f}x   goal batch >= 0.9: {'PASS' if res['fraction'] >= 0.9 else 'MISS'}")


if __name__ == "__main__":
    main()
