"""Shared fixtures: real sandbox subprocesses over HTTPS (never a mocked Graph).

- `sandbox`: one demo sandbox for the whole session (throttle off, no faults). Treat its data as
  shared: create your own users rather than deleting seeded ones, and undo admin changes.
- `make_sandbox(**kwargs)`: a private SandboxProcess (same arguments as SandboxProcess) in a fresh
  temp dir, stopped at the end of the test; use it for faults, throttling, restarts, permission changes.
- `graph(sandbox, tenant)`: a small helper bound to one tenant: `.get/.post/.patch/.delete(path, ...)`
  with a bearer token, paths relative to /v1.0.
"""

from __future__ import annotations

import types

import pytest
import requests

from xts_pipeline.sandbox.process import SandboxProcess


class GraphHelper:
    """requests against one sandbox tenant; `path` is relative to graph_url (e.g. "/users")."""

    def __init__(self, sandbox: SandboxProcess, tenant: str) -> None:
        self.sandbox = sandbox
        self.tenant = sandbox.tenant(tenant)
        self.session = sandbox.session()
        self._token: str | None = None

    @property
    def token(self) -> str:
        if self._token is None:
            self._token = self.sandbox.token(self.tenant["name"])
        return self._token

    def request(self, method: str, path: str, *, headers: dict | None = None, **kwargs) -> requests.Response:
        url = path if path.startswith("https://") else self.sandbox.info["graph_url"] + path
        h = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        return self.session.request(method, url, headers=h, timeout=60, **kwargs)

    def get(self, path: str, **kw) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw) -> requests.Response:
        return self.request("POST", path, **kw)

    def patch(self, path: str, **kw) -> requests.Response:
        return self.request("PATCH", path, **kw)

    def put(self, path: str, **kw) -> requests.Response:
        return self.request("PUT", path, **kw)

    def delete(self, path: str, **kw) -> requests.Response:
        return self.request("DELETE", path, **kw)

    def all_pages(self, path: str, **kw) -> list[dict]:
        out: list[dict] = []
        url: str | None = path
        while url:
            r = self.get(url, **kw)
            assert r.status_code == 200, r.text
            body = r.json()
            out.extend(body["value"])
            url = body.get("@odata.nextLink")
        return out


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory):
    with SandboxProcess(tmp_path_factory.mktemp("sandbox-shared"), seed="demo", throttle="off") as sb:
        yield sb


@pytest.fixture
def make_sandbox(tmp_path_factory):
    started: list[SandboxProcess] = []

    def make(**kwargs) -> SandboxProcess:
        kwargs.setdefault("seed", "demo")
        sb = SandboxProcess(tmp_path_factory.mktemp("sandbox"), **kwargs).start()
        started.append(sb)
        return sb

    yield make
    for sb in started:
        sb.stop()


@pytest.fixture
def graph():
    def bind(sb: SandboxProcess, tenant: str) -> GraphHelper:
        return GraphHelper(sb, tenant)

    return bind


# Cost groups, so `make test` can run the fast loop and `make test-all` everything (README, "Tests"):
#   architecture  reads the code itself: layers, import circles, the schema's owners, static security rules;
#   unit          pure code and private DuckDB files, in this process;
#   graph         the project's Graph client (xts_pipeline.graph, or msgraph-sdk) against the sandbox over HTTPS;
#   sandbox       the sandbox itself, or the pipeline's domain code against it (a subprocess per sandbox);
#   pipeline      builds Dagster definitions or runs a Dagster instance;
#   slow          long end-to-end runs (explicit `pytest.mark.slow`, whatever else they use).
# A test's group is read from what it uses, so a new test lands in the right group without a marker; only the
# architecture group is a list of files, because those tests use nothing but the source tree.
ARCHITECTURE_FILES = frozenset({"test_architecture.py", "test_schema.py", "test_security_static.py"})
GRAPH_MODULES = ("xts_pipeline.graph", "msgraph")
SANDBOX_FIXTURES = frozenset({"sandbox", "make_sandbox", "graph"})
SANDBOX_MODULES = ("xts_pipeline.sandbox", "tests.e2e_world", "tests.crash_trials", "tests.graph_helpers")


def _from(value: object, prefixes: tuple[str, ...]) -> bool:
    """Whether a module global (a module, class or function) comes from one of these modules."""
    name = getattr(value, "__name__", "") if isinstance(value, types.ModuleType) else getattr(value, "__module__", "")
    return isinstance(name, str) and name.startswith(prefixes)


def _uses_sandbox(item: pytest.Item) -> bool:
    return bool(SANDBOX_FIXTURES & set(item.fixturenames)) or any(
        _from(v, SANDBOX_MODULES) for v in vars(item.module).values())


def _uses_dagster(item: pytest.Item) -> bool:
    return any(_from(v, ("dagster", "assets", "checks", "assets.definitions")) for v in vars(item.module).values())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("slow"):
            continue
        if item.path.name in ARCHITECTURE_FILES:
            item.add_marker(pytest.mark.architecture)
        elif _uses_dagster(item):
            item.add_marker(pytest.mark.pipeline)
        elif _uses_sandbox(item):
            graph_client = any(_from(v, GRAPH_MODULES) for v in vars(item.module).values())
            item.add_marker(pytest.mark.graph if graph_client else pytest.mark.sandbox)
        else:
            item.add_marker(pytest.mark.unit)
