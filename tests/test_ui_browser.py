"""The Dagster UI in a real browser: lineage, per-pair check results, a plan preview with a held user.

A dry-run `xts sync` over the demo topology on the sandbox, then `dagster-webserver` over the same
workspace, instance and store, driven by Playwright in headless Chromium from Debian's packages
(`make browser-deps` installs it). What the pages must show is read from what the CLI printed for the
same cycle, so the test fails when the UI and the CLI disagree. Screenshots of a failing page go to
pytest's tmp directory, never into the repo.

Skipped when Chromium or Playwright is missing, unless XTS_REQUIRE_BROWSER=1 (`.ci/run` sets it).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from xts_pipeline.sandbox.process import SandboxProcess

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("XTS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
PLAN_ASSET = "provisioning_plan"  # the asset whose page shows the plan preview
CHECKED_ASSET = "guarded_plan"  # the asset the guardrail checks are defined on (assets/guarded_plan.py)


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (make browser-deps installs Debian's chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (it is in the [dev] extras)"
    return None


def _require_browser() -> None:
    why = _missing()
    if why and os.environ.get("XTS_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser test required (XTS_REQUIRE_BROWSER=1) but {why}")
    if why:
        pytest.skip(why)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_up(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"dagster-webserver exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 - loopback http, our own server
                if r.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"dagster-webserver not up after {timeout:.0f} s: {log.read_text()[-2000:]}")


def _held_by_guardrail(summary: str) -> dict[str, dict[str, int]]:
    """pair key -> {guardrail: held count}, from the CLI's "held by per-user guardrails" lines."""
    out: dict[str, dict[str, int]] = {}
    for pair, counts in re.findall(r"^\s+(\S+->\S+): held by per-user guardrails[^:]*: (.+)$", summary, re.M):
        out[pair.replace("->", "__")] = {g: int(n) for g, n in re.findall(r"(\w+) (\d+)", counts)}
    return out


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    _require_browser()
    root = tmp_path_factory.mktemp("ui")
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    state = root / ".sandbox" / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("XTS_") and k != "DAGSTER_HOME"}
    env.update(PYTHONPATH=str(REPO), DAGSTER_HOME=str(home), XTS_SANDBOX=str(state),
               XTS_DUCKDB=str(root / "xts.duckdb"), XTS_SYNC_WORKERS="1", XTS_LOG_LEVEL="WARNING",
               GX_ANALYTICS_ENABLED="False", DAGSTER_DISABLE_TELEMETRY="1")
    with SandboxProcess(state, seed="demo", throttle="off"):
        sync = subprocess.run([sys.executable, "-m", "xts_pipeline.cli", "sync", "--sandbox", str(state),
                               "--dry-run"], cwd=root, env=env, capture_output=True, text=True, timeout=900)
        assert sync.returncode == 0, sync.stdout[-3000:] + sync.stderr[-3000:]
        held = _held_by_guardrail(sync.stdout)
        pairs = {p.replace("->", "__") for p in re.findall(r"^\| (\S+->\S+) ", sync.stdout, re.M)}
        assert held, f"the demo's dry run held nobody, so there is nothing to look for:\n{sync.stdout[-3000:]}"
        port = _free_port()
        log = root / "webserver.log"
        with log.open("w") as fh:
            web = subprocess.Popen([sys.executable, "-m", "dagster_webserver", "-w", str(REPO / "workspace.yaml"),
                                    "-h", "127.0.0.1", "-p", str(port)], cwd=REPO, env=env, stdout=fh,
                                   stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_up(base + "/server_info", web, log)
            from playwright.sync_api import sync_playwright

            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
                page = browser.new_context(viewport={"width": 1600, "height": 1100}).new_page()
                page.set_default_timeout(60_000)
                yield {"base": base, "page": page, "held": held, "pairs": pairs, "summary": sync.stdout,
                       "shots": root}
                browser.close()
        finally:
            web.terminate()
            try:
                web.wait(30)
            except subprocess.TimeoutExpired:
                web.kill()


def _open(ui, path: str):
    page = ui["page"]
    page.goto(ui["base"] + path)
    page.wait_for_load_state("networkidle")
    skip = page.get_by_role("button", name="Skip")  # the UI's first-visit newsletter dialog
    if skip.count():
        skip.first.click()
    return page


def _shot(ui, name: str) -> str:
    path = ui["shots"] / f"{name}.png"
    ui["page"].screenshot(path=str(path))
    return str(path)


def test_lineage_shows_which_tenants_feed_each_pair(ui):
    """Each pair asset's lineage has exactly its source and its target tenant upstream."""
    assert len(ui["pairs"]) >= 2, ui["summary"]
    tenants = {t for p in ui["pairs"] for t in p.split("__")}
    for pair in sorted(ui["pairs"]):
        source, target = pair.split("__")
        page = _open(ui, f"/assets/pair/{pair}?view=lineage")
        page.get_by_text(source, exact=True).first.wait_for()
        page.get_by_text(target, exact=True).first.wait_for()
        text = page.inner_text("body")
        others = tenants - {source, target}
        # The lineage shows the node labels; a tenant that does not feed this pair must not be drawn.
        strays = [t for t in others if re.search(rf"^{re.escape(t)}$", text, re.M)]
        assert not strays, f"{pair}: lineage shows tenants that do not feed it: {strays} ({_shot(ui, 'lineage')})"


def test_checks_tab_says_which_pairs_fail_each_guardrail(ui):
    """For a per-user guardrail, the check's Partitions tab marks exactly the pairs it held users on."""
    pairs = ui["pairs"]
    for guardrail in ("privilege", "impersonation"):
        failing = {p for p, held in ui["held"].items() if held.get(guardrail)}
        assert failing, f"the demo holds nobody by {guardrail}: {ui['held']}"
        page = _open(ui, f"/assets/{CHECKED_ASSET}?view=checks")
        page.get_by_text(f"guardrail_{guardrail}", exact=True).first.click()
        page.get_by_text("Partitions", exact=True).last.click()
        failed = page.get_by_text(re.compile(r"^Failed \(\d+\)$")).first
        passed = page.get_by_text(re.compile(r"^Passed \(\d+\)$")).first
        failed.wait_for()
        n_failed = int(re.search(r"\d+", failed.inner_text()).group())
        n_passed = int(re.search(r"\d+", passed.inner_text()).group())
        where = _shot(ui, f"checks-{guardrail}")
        assert n_failed == len(failing), f"guardrail_{guardrail}: UI says {n_failed} failing, CLI {failing} ({where})"
        assert n_passed == len(pairs) - len(failing), f"guardrail_{guardrail}: UI {n_passed} passing ({where})"
        # Narrow the list to failed partitions only: it names exactly the pairs the CLI reported.
        for other in ("Passed", "Missing", "Skipped", "In Progress", "Execution Failed"):
            box = page.get_by_text(re.compile(rf"^{other} \(\d+\)$")).first
            if box.count():
                box.click()
        page.wait_for_timeout(1000)
        listed = {p for p in pairs if page.get_by_text(p, exact=True).count()}
        assert listed == failing, f"guardrail_{guardrail}: failed partitions {listed} != {failing} ({where})"


def test_plan_preview_marks_held_users_with_guardrail_and_reason(ui):
    """The plan's pages list held users first, marked HELD by <guardrail>: <reason>, as the CLI printed."""
    pair, held = max(ui["held"].items(), key=lambda kv: sum(kv[1].values()))
    name = pair.replace("__", "->")
    printed = re.findall(r"^\s+held (\S+): (\w+): (.+)$",
                         ui["summary"].split(f"{name}: held by", 1)[1].split("every entry", 1)[0], re.M)
    assert printed, ui["summary"]
    upn, guardrail, reason = printed[0]
    page = _open(ui, f"/assets/{PLAN_ASSET}?view=partitions&partition={pair}")
    page.get_by_text("plan page 1 of", exact=False).first.wait_for()
    row = page.get_by_text("plan page 1 of", exact=False).first.locator("xpath=ancestor::tr[1]")
    row.get_by_text("[Show Markdown]").click()
    dialog = page.get_by_role("dialog").first
    dialog.get_by_text(upn, exact=True).first.wait_for()
    text = dialog.inner_text()
    where = _shot(ui, "plan-preview")
    line = next((ln for ln in text.splitlines() if upn in ln), "")
    assert f"HELD by {guardrail}: {reason[:60]}" in line, f"{upn} not marked held by {guardrail}: {line!r} ({where})"
    marked = sum(1 for ln in text.splitlines() if ln.startswith("HELD by "))
    assert marked == min(sum(held.values()), 250), f"{pair}: {marked} rows marked held, CLI says {held} ({where})"
