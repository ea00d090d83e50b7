"""Security end to end: secrets and tokens never reach logs, output, DuckDB or Dagster's storage.

One demo sandbox over real HTTPS, each tenant's app granted exactly the least-privilege set the config
asks for. Then a full cycle of every demo pair runs through the definitions' real Dagster jobs (source,
target, then pair runs, as `xts sync` orders them) into a temporary DAGSTER_HOME and DuckDB file, in
this process so that every logger at DEBUG (msal, urllib3, dagster included) is captured, with
stdout/stderr captured at the file-descriptor level. (`xts sync` itself now runs tasks in worker
processes, whose log records an in-process capture can't see.) A second topology (no sandbox
overlay: credentials from environment variables, as in production) then fails twice on purpose: a
wrong client secret and a revoked permission (403). Afterwards every place a secret could land is
dumped to text and searched: captured logs and output, every row of every DuckDB table (and the raw
file), every event record, run config, tag and job snapshot of every run in the instance, every file
under DAGSTER_HOME, and the sandbox's own log.

What is searched for: each tenant's client secret, the deliberately wrong secret, the sandbox admin
key, access tokens fetched both with MSAL (the pipeline's own GraphClient) and with a plain OAuth
POST, the signed header segment every token of this sandbox starts with, and anything shaped like a
JWT (`eyJ...`.`...`.`...`). Bare "eyJ" is not enough: the sandbox's opaque delta tokens embed
base64 JSON too, and they are meant to be stored.
"""

from __future__ import annotations

import logging
import re
import stat
import textwrap
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest
from dagster._serdes import serialize_value

from xts_pipeline.config import load_config, resolve_config_path
from xts_pipeline.graph import GraphClient, TenantConnection
from xts_pipeline.graph.errors import AuthError, PermissionError_, endpoint_of
from xts_pipeline.graph.odata import eq
from xts_pipeline.sandbox.process import SandboxProcess

pytestmark = pytest.mark.slow

JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
BAD_SECRET = "wrong-secret-canary-7Q~x9Vb2Lm4Np6Rs8Tu0Wy"
# Loggers whose DEBUG output is most likely to carry credentials or full request lines.
LOUD_LOGGERS = ("", "msal", "urllib3", "requests", "dagster", "xts_pipeline", "xts", "filelock", "alembic")


@dataclass
class SecWorld:
    """The sandbox, the demo topology and the temporary paths the sync writes to."""

    root: Path
    sandbox: SandboxProcess
    home: Path
    db: Path

    def tenant(self, name: str) -> dict[str, Any]:
        return self.sandbox.tenant(name)


def least_privilege(sb: SandboxProcess) -> dict[str, list[str]]:
    """Grant every demo tenant exactly what the demo topology needs (required plus the documented optional
    role reader), so the cycle also proves that the permission table in config/permissions.py suffices."""
    topo = load_config(resolve_config_path(None, fallback_to_demo=True))
    grants = {}
    for name in topo.tenants:
        grants[name] = sorted({*topo.required_permissions(name), *topo.optional_permissions(name)})
        sb.admin("PUT", f"tenants/{name}/permissions", json={"permissions": grants[name]})
    return grants


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[SecWorld]:
    root = tmp_path_factory.mktemp("security")
    with SandboxProcess(root / "sandbox", seed="demo", throttle="off") as sb:
        least_privilege(sb)
        yield SecWorld(root=root, sandbox=sb, home=root / "dagster_home", db=root / "xts.duckdb")


def capture_everything(caplog: pytest.LogCaptureFixture) -> None:
    """DEBUG for every logger, including ones that don't propagate to the root handler."""
    for name in LOUD_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    for lg in list(logging.root.manager.loggerDict.values()):
        if isinstance(lg, logging.Logger) and not lg.propagate and caplog.handler not in lg.handlers:
            lg.addHandler(caplog.handler)


def release_capture(caplog: pytest.LogCaptureFixture) -> None:
    for lg in list(logging.root.manager.loggerDict.values()):
        if isinstance(lg, logging.Logger) and caplog.handler in lg.handlers:
            lg.removeHandler(caplog.handler)


def log_text(caplog: pytest.LogCaptureFixture) -> str:
    """Every captured record: message with args, exception text and stack, plus the formatted text."""
    parts = [caplog.text]
    for r in caplog.records:
        parts.append(f"{r.name} {r.levelname} {r.getMessage()}")
        if r.exc_info:
            parts.append("".join(traceback.format_exception(*r.exc_info)))
        if r.exc_text:
            parts.append(r.exc_text)
    return "\n".join(parts)


def failure_topology(w: SecWorld) -> Path:
    """A production-shaped config pointing straight at the sandbox (no overlay), secrets from env vars."""
    def tenant_block(name: str) -> str:
        t = w.tenant(name)
        return textwrap.dedent(f"""\
          {name}:
            tenant_id: {t['tenant_id']}
            domain: {t['domain']}
            client_id: {t['client_id']}
            app_object_id: {t['app_object_id']}
            authority: {t['authority']}
            graph_url: {w.sandbox.info['graph_url']}
            ca_file: {w.sandbox.info['ca_file']}
            credential: {{env: XTS_SECAUDIT_{name.upper()}}}
        """)
    text = ("tenants:\n" + textwrap.indent(tenant_block("northwind") + tenant_block("fabrikam"), "  ")
            + "topology:\n  - pair: {source: northwind, target: fabrikam}\n    scope: {all_members: true}\n"
            + "inbound_policies:\n  fabrikam: {allowed_sources: [northwind]}\n")
    path = w.root / "failing.yaml"
    path.write_text(text)
    return path


def msal_tokens(w: SecWorld) -> list[str]:
    """Access tokens from the pipeline's own client (MSAL) and from a plain OAuth POST, per tenant."""
    out = []
    info = w.sandbox.info
    for t in info["tenants"]:
        conn = TenantConnection(name=t["name"], tenant_id=t["tenant_id"], client_id=t["client_id"],
                                client_secret=t["client_secret"], authority=t["authority"],
                                graph_url=info["graph_url"], ca_file=info["ca_file"])
        with GraphClient(conn) as c:
            out.append(c.tokens.token())
        out.append(w.sandbox.token(t["name"]))
    return out


def duckdb_dump(db: Path) -> str:
    """Every row of every table and view, as text."""
    lines = []
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall()]
        for t in tables:
            cols = [r[0] for r in con.execute(f'DESCRIBE "{t}"').fetchall()]
            lines.append(f"## {t} {cols}")
            lines += [repr(row) for row in con.execute(f'SELECT * FROM "{t}"').fetchall()]  # noqa: S608
    finally:
        con.close()
    return "\n".join(lines)


def dagster_dump(home: Path) -> tuple[str, set[str], int]:
    """Serialised runs (config, tags), every event record and the job/plan snapshots of every run."""
    parts: list[str] = []
    events = 0
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        for run in runs:
            parts += [serialize_value(run), repr(run.run_config), repr(run.tags)]
            for rec in instance.all_logs(run.run_id):
                parts.append(serialize_value(rec))
                events += 1
            if run.job_snapshot_id:
                parts.append(serialize_value(instance.get_job_snapshot(run.job_snapshot_id)))
            if run.execution_plan_snapshot_id:
                parts.append(serialize_value(instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)))
    return "\n".join(parts), {r.run_id for r in runs}, events


def files_under(root: Path, skip: set[str] = frozenset()) -> dict[str, str]:
    """Each file's bytes as text (latin-1 keeps every byte), by relative path."""
    return {str(p.relative_to(root)): p.read_bytes().decode("latin-1") for p in sorted(root.rglob("*"))
            if p.is_file() and p.name not in skip}


def leaks(needles: dict[str, str], haystacks: dict[str, str]) -> list[str]:
    """'<needle label> in <place>' for every hit, never the secret itself (pytest would print it)."""
    found = [f"{label} in {place}" for place, text in haystacks.items()
             for label, needle in needles.items() if needle and needle in text]
    found += [f"a JWT-shaped string in {place}" for place, text in haystacks.items() if JWT.search(text)]
    return found


def run_cycle_in_process(config: Path, sandbox: Path | None, db: Path, instance: dg.DagsterInstance,
                         run_ids: list[str]) -> dict[str, bool]:
    """Source, target, then pair runs of the definitions' jobs, in this process (so every log record
    reaches caplog), the order `xts sync` and the schedule use. Returns run success by partition and
    appends each run's id to `run_ids`."""
    from assets.definitions import build_definitions

    defs = build_definitions(config, str(sandbox) if sandbox else None, db)
    topo = load_config(config)
    pairs = [p for p in topo.pairs() if p.enabled]
    done: dict[str, bool] = {}
    for job, keys in (("source_job", sorted({p.source for p in pairs})),
                      ("target_job", sorted({p.target for p in pairs})),
                      ("pair_sync_job", [p.key for p in pairs])):
        for key in keys:
            if job == "pair_sync_job" and not all(done.get(k) for k in key.split("__")):
                continue  # as `xts sync`: a pair runs only when its source and target runs succeeded
            res = defs.resolve_job_def(job).execute_in_process(
                partition_key=key, instance=instance, raise_on_error=False, tags={"xts/cycle": "security"})
            run_ids.append(res.run_id)
            done[key] = res.success and done.get(key, True)  # a tenant may be source and target
    return done


def test_a_full_cycle_and_two_failures_leak_no_secret_or_token(world, caplog, capfd, monkeypatch):
    w = world
    info = w.sandbox.info
    monkeypatch.setenv("DAGSTER_HOME", str(w.home))
    monkeypatch.delenv("XTS_CONFIG", raising=False)
    w.home.mkdir(exist_ok=True)
    run_ids: list[str] = []
    capture_everything(caplog)
    try:
        with dg.DagsterInstance.from_config(str(w.home)) as instance:
            # 1. A full cycle of every pair of the demo topology, on the sandbox overlay.
            demo = resolve_config_path(None, fallback_to_demo=True)
            topo = load_config(demo)
            ok = run_cycle_in_process(demo, w.sandbox.state_dir, w.db, instance, run_ids)
            assert all(ok.values()) and len(ok) == len(topo.tenants) + len(topo.pairs()), ok
            with duckdb.connect(str(w.db), read_only=True) as con:
                created = con.execute("SELECT count(*) FROM provisioning_log WHERE operation = 'create' "
                                      "AND status = 'Success'").fetchone()[0]
            assert created > 500, "the cycle must really have written to the targets"

            # 2. Production-shaped config: a wrong client secret for the source ...
            cfg = failure_topology(w)
            monkeypatch.setenv("XTS_SECAUDIT_NORTHWIND", BAD_SECRET)
            monkeypatch.setenv("XTS_SECAUDIT_FABRIKAM", w.tenant("fabrikam")["client_secret"])
            assert run_cycle_in_process(cfg, None, w.db, instance, run_ids) == {"northwind": False, "fabrikam": True}

            # 3. ... then the right secret, but User.Read.All revoked: Graph answers 403.
            monkeypatch.setenv("XTS_SECAUDIT_NORTHWIND", w.tenant("northwind")["client_secret"])
            w.sandbox.admin("PUT", "tenants/northwind/permissions", json={"permissions": ["GroupMember.Read.All"]})
            try:
                assert run_cycle_in_process(cfg, None, w.db, instance, run_ids) == {"northwind": False, "fabrikam": True}
            finally:
                least_privilege(w.sandbox)
        out = capfd.readouterr()
    finally:
        release_capture(caplog)

    logs = log_text(caplog)
    loggers = {r.name.split(".")[0] for r in caplog.records}
    assert {"urllib3", "msal", "dagster"} <= loggers, loggers  # the capture really saw DEBUG from each

    tokens = msal_tokens(w)
    needles = {f"client secret of {t['name']}": t["client_secret"] for t in info["tenants"]}
    needles |= {"the wrong client secret": BAD_SECRET, "the sandbox admin key": info["admin_key"]}
    needles |= {f"access token #{i}": tok for i, tok in enumerate(tokens)}
    needles["the sandbox's signed JWT header"] = tokens[0].split(".", 1)[0] + "."
    needles["an Authorization header"] = "Bearer ey"

    dagster_text, runs, events = dagster_dump(w.home)
    assert runs == set(run_ids) and events > 20 * len(runs), (len(runs), events)  # every run we launched
    for said in (logs + out.err, dagster_text):  # both failures were reported, naming the cause
        assert "AADSTS7000215" in said and "User.Read.All" in said
    dump = duckdb_dump(w.db)
    assert "## provisioning_log" in dump and dump.count("\n") > 1000

    haystacks = {"captured logs": logs, "stdout": out.out, "stderr": out.err, "DuckDB tables": dump,
                 "DuckDB file": w.db.read_bytes().decode("latin-1"), "Dagster runs and event log": dagster_text}
    haystacks |= {f"DAGSTER_HOME/{k}": v for k, v in files_under(w.home).items()}
    haystacks |= {f"sandbox/{k}": v for k, v in files_under(w.sandbox.state_dir, skip={
        "sandbox.json", "sandbox.out", "sandbox.sqlite3", "sandbox.sqlite3-wal", "sandbox.sqlite3-shm",
        "signing-key.pem", "server-key.pem"}).items()}
    found = leaks(needles, haystacks)
    assert not found, "secrets or tokens leaked:\n" + "\n".join(found)

    # Our own log lines name endpoints, never query strings (filters hold personal data, links hold state).
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("xts_pipeline")]
    assert not [m for m in ours if re.search(r"\?\$|\$filter|\$skiptoken|\$deltatoken", m)]


PRIVATE_SANDBOX_FILES = ("sandbox.json", "sandbox.out", "sandbox.sqlite3", "signing-key.pem", "server-key.pem")


def test_state_files_are_private(world):
    """sandbox.json (client secrets, admin key) and the other secret-bearing sandbox files are 0600, even
    when a restart finds them (or a stale temp file) with a wider mode; the staging database, which holds
    every tenant's user data, is created 0600 as well."""
    state = world.sandbox.state_dir

    def modes() -> dict[str, str]:
        return {n: oct(stat.S_IMODE((state / n).stat().st_mode)) for n in PRIVATE_SANDBOX_FILES}

    assert set(modes().values()) == {"0o600"}, modes()
    (state / "sandbox.out").chmod(0o644)
    (state / "sandbox.json.tmp").write_text("{}")
    (state / "sandbox.json.tmp").chmod(0o644)
    world.sandbox.restart()
    assert set(modes().values()) == {"0o600"}, modes()
    from xts_pipeline import store

    fresh = world.root / "fresh" / "xts.duckdb"
    with store.connect(fresh) as con:
        con.execute("SELECT 1")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600


def test_failures_name_the_cause_without_credentials(world, caplog):
    """str/repr/traceback of a bad-credential and a 403 failure, and retry logs under injected faults:
    tenant and endpoint, never the secret, the token, or the $filter value."""
    caplog.set_level(logging.DEBUG)
    info = world.sandbox.info
    t = world.tenant("fabrikam")

    def conn(secret: str) -> TenantConnection:
        return TenantConnection(name="fabrikam", tenant_id=t["tenant_id"], client_id=t["client_id"],
                                client_secret=secret, authority=t["authority"], graph_url=info["graph_url"],
                                ca_file=info["ca_file"])

    def rendered(exc: BaseException) -> str:
        return "\n".join([str(exc), repr(exc), repr(vars(exc)), "".join(traceback.format_exception(exc))])

    group = "Quarterly Sales O'Brien"  # a variable: tracebacks quote source lines, never local values
    with GraphClient(conn(BAD_SECRET)) as c, pytest.raises(AuthError) as auth:
        c.find_users(eq("mail", "nobody@example.com"))
    with GraphClient(conn(t["client_secret"])) as good:
        token = good.tokens.token()
        world.sandbox.admin("PUT", "tenants/fabrikam/permissions", json={"permissions": ["User.Read.All"]})
        try:
            with pytest.raises(PermissionError_) as perm:
                list(good.iter_groups(["id"], filter=eq("displayName", group)))
        finally:
            least_privilege(world.sandbox)
        assert "GroupMember.Read.All" in str(perm.value) and "fabrikam" in str(perm.value)

        # Retry logs under read faults: the endpoint, not the filter value (personal data) or the token.
        canary = "canary.person@example.com"
        world.sandbox.admin("PUT", "faults", json={"spec": "tenant=fabrikam,kind=read,503=0.6", "seed": 3})
        try:
            good.find_users(eq("mail", canary))
        finally:
            world.sandbox.admin("PUT", "faults", json={"spec": None, "seed": 0})
    retries = [r.getMessage() for r in caplog.records if r.name.startswith("xts_pipeline") and "retry" in r.getMessage()]
    assert retries, "the fault spec must have caused at least one logged retry"
    own = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("xts_pipeline"))
    blob = "\n".join([rendered(auth.value), rendered(perm.value), own])
    assert "fabrikam" in str(auth.value) and "/oauth2/v2.0/token" in str(auth.value)
    assert leaks({"the wrong secret": BAD_SECRET, "the secret": t["client_secret"], "the token": token,
                  "the filter value": canary, "a group name": "Quarterly Sales"}, {"errors and our logs": blob}) == []
    assert endpoint_of(f"{info['graph_url']}/users?$filter=mail eq '{canary}'") == f"{info['graph_url']}/users"
