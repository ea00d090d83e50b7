"""`xts approve` / `xts release` through the real command line and a real DuckDB file."""

from __future__ import annotations

import duckdb
import pytest

from xts_pipeline.cli import main
from xts_pipeline.guardrails import quarantine as q
from xts_pipeline.guardrails.approvals import find_approval
from xts_pipeline.guardrails.policy import QuarantinePolicy

FP = "0123456789abcdef0123456789abcdef"


@pytest.fixture()
def db(tmp_path, monkeypatch):
    path = tmp_path / "xts.duckdb"
    monkeypatch.setenv("XTS_DUCKDB", str(path))
    monkeypatch.delenv("XTS_CONFIG", raising=False)
    monkeypatch.setenv("XTS_APPROVER", "alice")
    return path


def test_approve_records_who_when_why(db, capsys) -> None:
    assert main(["approve", "--pair", "contoso->fabrikam", "--plan", FP.upper(), "--reason", "merger day"]) == 0
    out = capsys.readouterr().out
    assert f"approved plan {FP} of contoso->fabrikam by alice" in out and "merger day" in out
    with duckdb.connect(str(db)) as con:
        found = find_approval(con, "contoso__fabrikam", FP)
    assert found is not None and found["approved_by"] == "alice"


@pytest.mark.parametrize("argv,needle", [
    (["approve", "--pair", "contoso", "--plan", FP, "--reason", "x"], "SRC->DST"),
    (["approve", "--pair", "contoso->fabrikam", "--plan", "abc", "--reason", "x"], "contoso__fabrikam"),
])
def test_approve_errors_name_the_pair(db, capsys, argv, needle) -> None:
    assert main(argv) == 2
    assert needle in capsys.readouterr().err


def test_release_lifts_quarantine(db, capsys) -> None:
    assert main(["release", "--pair", "contoso->fabrikam"]) == 1
    assert "contoso->fabrikam is not quarantined" in capsys.readouterr().err
    with duckdb.connect(str(db)) as con:
        q.enter(con, "contoso__fabrikam", "credentials failed", QuarantinePolicy())
    assert main(["release", "--pair", "contoso->fabrikam"]) == 0
    assert "released contoso->fabrikam from quarantine" in capsys.readouterr().out
    with duckdb.connect(str(db)) as con:
        assert not q.is_skipped(con, "contoso__fabrikam").skipped


def test_approve_with_config_checks_the_pair_and_uses_its_duckdb(tmp_path, monkeypatch, capsys) -> None:
    from xts_pipeline.config import default_config_path

    monkeypatch.setenv("XTS_HOME", str(tmp_path))
    monkeypatch.setenv("XTS_APPROVER", "bob")
    demo = str(default_config_path())
    assert main(["approve", "--config", demo, "--pair", "contoso->fabrikam", "--plan", FP, "--reason", "ok"]) == 0
    assert "by bob" in capsys.readouterr().out
    with duckdb.connect(str(tmp_path / "xts.duckdb")) as con:
        assert find_approval(con, "contoso__fabrikam", FP) is not None
    assert main(["approve", "--config", demo, "--pair", "contoso->nowhere", "--plan", FP, "--reason", "ok"]) == 2
    assert "contoso->nowhere" in capsys.readouterr().err


def test_approve_says_when_the_store_holds_no_such_plan_and_where_it_looked(db, capsys) -> None:
    """An approval typed against the wrong store used to succeed silently while the pair stayed blocked."""
    assert main(["approve", "--pair", "contoso__fabrikam", "--plan", FP, "--reason", "x"]) == 0
    captured = capsys.readouterr()
    assert f"stored in {db}" in captured.out
    assert f"the store {db} holds no plan of contoso->fabrikam" in captured.err and "--config" in captured.err


def test_printed_commands_paste_into_a_shell() -> None:
    """`->` unquoted is a redirect; every printed command quotes it and carries --config when one is used."""
    import shlex
    from pathlib import Path

    from xts_pipeline.paths import Paths, xts_command

    paths = Paths(config=Path("/srv/my topology.yaml"), duckdb=Path("/srv/xts.duckdb"), origin="--config")
    cmd = xts_command(paths, "approve", "--pair", "tailspin->contoso", "--plan", FP, "--reason", "...")
    assert shlex.split(cmd) == ["xts", "approve", "--config", "/srv/my topology.yaml", "--pair",
                                "tailspin->contoso", "--plan", FP, "--reason", "..."]
    demo = Paths(config=Path("/x/demo.yaml"), duckdb=Path("/x/xts.duckdb"), origin="packaged demo")
    assert xts_command(demo, "release", "--pair", "a->b") == "xts release --pair 'a->b'"
