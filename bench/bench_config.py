"""How long loading and expanding a topology takes, for meshes of growing size.

Prints seconds per load and per pair. The figure that matters: a Dagster code location loads the
config at start-up, so a 20-tenant mesh (380 pairs) should load well under the 10 s peer limit
(the expression bench's budget), here reported as a ratio.
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

from xts_pipeline.config import default_config_path, load_config

LIMIT_S = 10.0


def mesh_doc(n: int) -> dict:
    names = [f"tenant{i:02d}" for i in range(n)]
    tenants = {}
    for name in names:
        ids = [str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.{k}")) for k in ("t", "c", "a")]
        tenants[name] = {"tenant_id": ids[0], "domain": f"{name}.onmicrosoft.com", "client_id": ids[1],
                         "app_object_id": ids[2], "credential": {"env": f"XTS_SECRET_{name.upper()}"}}
    return {
        "tenants": tenants,
        "sync_defaults": {
            "scope": {"all_members": True,
                      "filters": [{"clauses": [{"attribute": "department", "operator": "REGEX MATCH",
                                                "value": "^(Sales|IT)$"}]}]},
            "mappings": [{"target": "companyName", "type": "Expression",
                          "expression": 'Coalesce([companyName], Join(" ", "Merged", [department]))'}],
        },
        "topology": [{"mesh": names}],
    }


def main() -> int:
    t0 = time.perf_counter()
    load_config(default_config_path())
    print(f"demo topology: {time.perf_counter() - t0:.3f} s (first load, includes imports)")
    with tempfile.TemporaryDirectory() as d:
        for n in (3, 10, 20, 40):
            path = Path(d) / f"mesh{n}.yaml"
            path.write_text(yaml.safe_dump(mesh_doc(n)), encoding="utf-8")
            t0 = time.perf_counter()
            topo = load_config(path)
            elapsed = time.perf_counter() - t0
            pairs = len(topo.pairs())
            print(f"mesh of {n:2d}: {pairs:4d} pairs in {elapsed:.3f} s "
                  f"({1000 * elapsed / pairs:.2f} ms/pair; {elapsed / LIMIT_S:.1%} of a {LIMIT_S:.0f} s budget)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
