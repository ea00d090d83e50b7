"""The guarded plan's report in DuckDB: what apply obeys, for the same plan only (a real DuckDB file)."""

from __future__ import annotations

from xts_pipeline import store
from xts_pipeline.guardrails import verdicts
from xts_pipeline.guardrails.verdicts import Report, Verdict

PAIR = "contoso__fabrikam"


def _plan(con, cycle: str, fingerprint: str) -> None:
    con.execute("INSERT OR REPLACE INTO plan_meta (pair_key, cycle_id, fingerprint) VALUES (?, ?, ?)",
                [PAIR, cycle, fingerprint])


def _report(cycle: str, fingerprint: str, *, blocked: bool) -> Report:
    cmd = f"xts approve --pair 'contoso->fabrikam' --plan {fingerprint} --reason ..."
    return Report(PAIR, cycle, fingerprint, (
        Verdict("volume", not blocked, blocked, "volume: 141 > 50" if blocked else "volume: 3 <= 50", "ERROR",
                cmd if blocked else None, {"scope": "pair"}),
        Verdict("impersonation", False, False, "1 user resembles a protected identity", "WARN", None,
                {"scope": "user", "blocked_users": 1}),
        Verdict("quarantine", True, False, "contoso->fabrikam: not quarantined")))


def test_apply_obeys_the_verdicts_of_the_same_plan_only(tmp_path) -> None:
    db = tmp_path / "xts.duckdb"
    with store.connect(db) as con:
        assert verdicts.apply_blocks(con, PAIR) == [f"pair {PAIR.replace('__', '->')} has no plan"]
        _plan(con, "run1", "f" * 32)
        assert "have not judged the current plan" in verdicts.apply_blocks(con, PAIR)[0]

        held = [{"pair_key": PAIR, "cycle_id": "run1", "change_id": "c1", "check_name": "impersonation",
                 "reason": "looks like the CEO"}]
        assert verdicts.record(con, _report("run1", "f" * 32, blocked=True), held) == 1
        assert verdicts.apply_blocks(con, PAIR) == ["guardrail_volume: volume: 141 > 50"]
        loaded = verdicts.load(con, PAIR)
        assert loaded is not None and loaded.blocked and loaded.held_users == 1
        assert [v.check_name for v in loaded.stops()] == ["volume"]
        assert loaded.stops()[0].approve_command.endswith(f"--plan {'f' * 32} --reason ...")

        # Recorded again (the next run of the same plan): replaced, not added to.
        verdicts.record(con, _report("run1", "f" * 32, blocked=False), held)
        assert verdicts.apply_blocks(con, PAIR) == []
        assert con.execute("SELECT count(*) FROM guardrail_verdicts").fetchone()[0] == 3
        assert con.execute("SELECT count(*) FROM plan_exclusions").fetchone()[0] == 1

        # A newer plan the guardrails have not judged: passing verdicts of the old one do not carry over.
        _plan(con, "run2", "e" * 32)
        refused = verdicts.apply_blocks(con, PAIR)
        assert len(refused) == 1 and "for another plan" in refused[0] and "run2" in refused[0]
        # The planner clears them when it replaces the plan.
        verdicts.clear(con, PAIR)
        assert "have not judged the current plan" in verdicts.apply_blocks(con, PAIR)[0]
        assert con.execute("SELECT count(*) FROM plan_exclusions").fetchone()[0] == 0


def test_a_new_fingerprint_in_the_same_cycle_is_another_plan(tmp_path) -> None:
    with store.connect(tmp_path / "xts.duckdb") as con:
        _plan(con, "run1", "a" * 32)
        verdicts.record(con, _report("run1", "a" * 32, blocked=False), [])
        assert verdicts.apply_blocks(con, PAIR) == []
        _plan(con, "run1", "b" * 32)
        assert "for another plan" in verdicts.apply_blocks(con, PAIR)[0]
