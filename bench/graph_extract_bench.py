"""Extraction benchmark: full read of a 100,000-user tenant, then a delta round with 100 changes.

Seeds a tenant with `xts sandbox seed` before serving it, then prints:
- full extraction time with GET /users ($select, $top=999, nextLink paging) and with the initial
  delta round (the pipeline's first cycle: it also yields the deltaLink);
- the time of a delta round after 100 users changed, and its ratio to the full extraction;
- peak RSS of this (client) process: pages are streamed and dropped, never held as one list.

    .venv/bin/python bench/graph_extract_bench.py --users 100000
"""

from __future__ import annotations

import argparse
import atexit
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from xts_pipeline.graph import GraphClient
from xts_pipeline.sandbox.process import SandboxProcess

SELECT = ["id", "displayName", "givenName", "surname", "mail", "userPrincipalName", "department", "jobTitle",
          "companyName", "accountEnabled", "userType", "employeeId", "city", "country", "officeLocation"]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def consume(pages) -> int:
    """Stand-in for the staging writer: look at each page, then drop it."""
    n = 0
    for page in pages:
        n += len(page)
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--changed", type=int, default=100)
    ap.add_argument("--throttle", default="documented", choices=["documented", "off"])
    ap.add_argument("--state", default=None)
    args = ap.parse_args()
    state = Path(args.state or tempfile.mkdtemp(prefix="xts-extract-bench-"))
    if not args.state:  # a temporary sandbox state goes when the bench ends
        atexit.register(shutil.rmtree, state, ignore_errors=True)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "xts_pipeline.cli", "sandbox", "seed", "--state", str(state),
                    "--tenant", "big", "--users", str(args.users)], check=True, stdout=subprocess.DEVNULL)
    seed_s = time.perf_counter() - t0
    with SandboxProcess(state, seed=None, throttle=args.throttle) as sb:
        with GraphClient(sb.connection("big")) as client:
            client.tokens.token()
            rss0 = rss_mb()
            t0 = time.perf_counter()
            n_list = consume(client.iter_users(SELECT, top=999))
            list_s = time.perf_counter() - t0

            t0 = time.perf_counter()
            full = client.delta_users(SELECT)
            n_delta = consume(full)
            delta_full_s = time.perf_counter() - t0
            rss_full = rss_mb()

            ids = []
            for page in client.iter_users(["id"], top=999):
                ids.extend(u["id"] for u in page)
                if len(ids) >= args.changed * 50:
                    break
            changed = ids[:: max(1, len(ids) // args.changed)][: args.changed]
            for i, uid in enumerate(changed):
                sb.admin("PATCH", f"/_sandbox/tenants/big/users/{uid}", json={"jobTitle": f"Changed {i}"})

            t0 = time.perf_counter()
            rnd = client.delta_users(SELECT, delta_link=full.delta_link)
            n_changes = consume(rnd)
            delta_s = time.perf_counter() - t0
        sb.session().close()
    print(f"tenant 'big': {args.users} users seeded in {seed_s:.1f} s; sandbox throttle={args.throttle}")
    print(f"full extraction, GET /users $top=999 : {n_list} users in {list_s:.2f} s ({n_list / list_s:,.0f} users/s)")
    print(f"full extraction, initial delta round : {n_delta} users in {delta_full_s:.2f} s "
          f"({full.pages} pages, {n_delta / delta_full_s:,.0f} users/s)")
    print(f"delta round after {len(changed)} changes  : {n_changes} users in {delta_s:.3f} s; "
          f"ratio to full delta extraction {delta_s / delta_full_s:.4f} "
          f"({delta_full_s / delta_s:,.0f}x faster); resynced={rnd.resynced}")
    print(f"peak RSS of the client process: {rss_full:.0f} MB (before extraction {rss0:.0f} MB)")


if __name__ == "__main__":
    main()
