"""In-process checks of the app's last-resort error path: a crash still answers with Graph's error body."""

from __future__ import annotations

import re
import warnings

with warnings.catch_warnings():  # starlette nags about httpx vs httpx2; irrelevant here
    warnings.simplefilter("ignore", DeprecationWarning)
    from starlette.testclient import TestClient

from xts_pipeline.sandbox.app import SandboxApp, raw_asgi
from xts_pipeline.sandbox.clock import SandboxClock
from xts_pipeline.sandbox.routes import GraphRoute
from xts_pipeline.sandbox.seed import generate_tenant
from xts_pipeline.sandbox.store import SandboxStore
from xts_pipeline.sandbox.tokens import TokenSigner


def test_unhandled_exception_becomes_a_graph_500_without_a_trace(tmp_path):
    store = SandboxStore(tmp_path)
    t = store.add_tenant(generate_tenant("tiny", 10, seed=1))
    clock = SandboxClock()
    signer = TokenSigner(tmp_path)
    app = SandboxApp(store, clock, signer, admin_key="k", base_url="https://testserver")

    def boom(*_args):
        raise RuntimeError("secret-internal-detail")

    app.routes.insert(0, GraphRoute("GET", re.compile("^/boom$"), boom, None))
    token = signer.issue(tenant_id=t.tenant_id, app_id=t.client_id, roles=t.permissions, now=clock.now(),
                         issuer="x")
    with TestClient(raw_asgi(app), raise_server_exceptions=False, base_url="https://testserver") as client:
        r = client.get("/v1.0/boom", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 500
        err = r.json()["error"]
        assert err["code"] == "InternalServerError" and "RuntimeError" in err["message"]
        assert "secret-internal-detail" not in r.text and "Traceback" not in r.text
        assert r.headers["request-id"] == err["innerError"]["request-id"]
        ok = client.get("/v1.0/users?$top=2", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200 and len(ok.json()["value"]) == 2
    store.close()
