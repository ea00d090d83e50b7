"""The blocking schema check over staged users, run by Dagster against a real store.

It reads the stored rows back (checks observe): a row that reached `staged_users` but breaks the schema (here
written past staging, as a bug or a hand edit would) fails the check and is named; ordinary rows pass. The check
hands pandera only the rows staging's DuckDB pre-check cannot pass, so both paths are exercised here.
"""

from __future__ import annotations

import json
import uuid

import dagster as dg

from assets.resources import StagingDuckDB, TopologyResource
from assets.sync import STAGED
from checks.staging_checks import build_staging_checks
from tests.test_staging import GRAPH_DOC_USER
from xts_pipeline import store
from xts_pipeline.config import default_config_path

TENANT = "contoso"
PARTS = dg.StaticPartitionsDefinition([TENANT])


def check_result(tmp_path, users: list[dict], check_name: str) -> dg.AssetCheckEvaluation:
    """Stage `users` as they are (no validation), then run the asset and one of its checks."""
    db = tmp_path / "xts.duckdb"
    with store.connect(db) as con:
        con.executemany("INSERT INTO raw_users (tenant, id, data, seen_cycle, updated_at) VALUES (?, ?, ?, 'c', now())",
                        [[TENANT, u["id"], json.dumps(u)] for u in users])
        con.executemany("INSERT INTO staged_users (tenant, id, user_principal_name, user_type) VALUES (?, ?, ?, ?)",
                        [[TENANT, u["id"], u["userPrincipalName"], u["userType"]] for u in users])

    @dg.asset(key=STAGED, partitions_def=PARTS)
    def staged_source_users() -> None:
        """Stand-in: the rows are already in the store."""

    check = next(c for c in build_staging_checks(PARTS) if check_name in str(c.check_keys))
    result = dg.materialize([staged_source_users, check], partition_key=TENANT,
                            resources={"duckdb": StagingDuckDB(path=str(db)),
                                       "topology": TopologyResource(config_path=str(default_config_path()))},
                            instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


def schema_result(tmp_path, users: list[dict]) -> dg.AssetCheckEvaluation:
    return check_result(tmp_path, users, "staged_users_schema")


def ordinary(i: int) -> dict:
    return {**GRAPH_DOC_USER, "id": str(uuid.uuid4()), "displayName": f"Adele Vance {i}",
            "userPrincipalName": f"adele{i}@contoso.com", "mail": f"adele{i}@contoso.com"}


def test_schema_check_passes_ordinary_staged_users(tmp_path):
    evaluation = schema_result(tmp_path, [ordinary(i) for i in range(30)])
    assert evaluation.passed, evaluation.description
    assert evaluation.metadata["schema_failures"].value == []


def test_schema_check_fails_on_a_staged_row_that_breaks_the_schema(tmp_path):
    users = [ordinary(i) for i in range(30)]
    users[7]["userPrincipalName"] = "adele7@contoso.com\n"  # a control character: never a valid UPN
    users[12]["displayName"] = "x" * 300  # over Graph's 256
    evaluation = schema_result(tmp_path, users)
    assert not evaluation.passed
    failures = evaluation.metadata["schema_failures"].value
    assert {f["column"] for f in failures} == {"user_principal_name", "display_name"}, failures
    assert "2 staged rows break the schema" in evaluation.description


def expectations_result(tmp_path, users: list[dict]) -> dg.AssetCheckEvaluation:
    return check_result(tmp_path, users, "staged_users_expectations")


def test_expectations_pass_when_no_address_is_shared(tmp_path):
    users = [ordinary(i) for i in range(10)]
    users[3]["mail"] = None  # users without a mail share nothing
    users[4]["mail"] = None
    evaluation = expectations_result(tmp_path, users)
    assert evaluation.passed, evaluation.description


def test_expectations_warn_when_two_users_share_a_mail_in_another_case(tmp_path):
    """Entra: "A UPN must be unique among all security principal objects within a directory forest."
    (hybrid/connect/plan-connect-userprincipalname.md). Mails are folded as the planner folds them to match."""
    users = [ordinary(i) for i in range(10)]
    users[6]["mail"] = users[2]["mail"].upper()
    evaluation = expectations_result(tmp_path, users)
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.description == "tenant contoso: 2 users share a mail value", evaluation.description


def test_expectations_warn_when_two_users_share_a_upn_in_another_case(tmp_path):
    users = [ordinary(i) for i in range(10)]
    users[4]["userPrincipalName"] = users[1]["userPrincipalName"].upper()
    evaluation = expectations_result(tmp_path, users)
    assert not evaluation.passed
    assert evaluation.description == "tenant contoso: 2 users share a upn value", evaluation.description
