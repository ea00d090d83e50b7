"""The source extraction against the sandbox's Graph-shaped delta: partial items, duplicates, manager@delta.

api/user-delta.md: "Updated instances are represented by their id with at least the updated properties",
"If the property has never been set before it will not be included in the response at all" and "A single
entity can be contained multiple times in the response". concepts/delta-query-overview.md: "$expand isn't
supported", "$select also supports manager and members navigation properties" and "Relationships on users
and groups are represented as annotations ... propertyName@delta".
"""

from __future__ import annotations

import orjson
import pytest

from tests.graph_helpers import connection, grant
from tests.graph_helpers import raw_users as users
from xts_pipeline import extract, store, vocabulary
from xts_pipeline.graph import GraphClient
from xts_pipeline.sandbox.process import SandboxProcess


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    with SandboxProcess(tmp_path_factory.mktemp("graph-extract"), seed="demo") as sb:
        yield sb
        sb.session().close()


@pytest.fixture
def client(sandbox):
    with GraphClient(connection(sandbox.info, grant(sandbox, "northwind"))) as c:
        yield c


def stored(db, uid: str) -> dict | None:
    with store.connect(db) as con:
        row = con.execute("SELECT data FROM raw_users WHERE tenant = 'northwind' AND id = ?", [uid]).fetchone()
    return orjson.loads(row[0]) if row else None


def test_delta_extraction_merges_partial_items_and_tracks_manager_by_annotation(sandbox, client, tmp_path, graph):
    db = tmp_path / "x.duckdb"
    res = extract.extract_source_users(db, "northwind", client, "c1")
    raw = {u["id"]: u for u in users(sandbox, "northwind")}
    assert res.mode == "full" and res.total == len(raw)
    with_mgr = sorted(uid for uid, u in raw.items() if u.get("_managerId"))
    a, b, c = with_mgr[:3]
    assert stored(db, a)["manager"] == {"id": raw[a]["_managerId"]}  # from manager@delta, no $expand sent
    g = graph(sandbox, "northwind")
    # a partial update: only jobTitle changes; the manager annotation is absent, so the manager stays
    assert g.patch(f"/users/{a}", json={"jobTitle": "Partial Title"}).status_code == 204
    # the same user twice in one round: the later copy wins
    assert g.patch(f"/users/{b}", json={"department": "First"}).status_code == 204
    assert g.patch(f"/users/{b}", json={"department": "Second"}).status_code == 204
    # removed then restored in the same round: still there afterwards
    assert g.delete(f"/users/{c}").status_code == 204
    assert g.post(f"/directory/deletedItems/{c}/restore").status_code == 200
    # a manager removal comes as an @removed annotation
    assert g.delete(f"/users/{b}/manager/$ref").status_code == 204
    res = extract.extract_source_users(db, "northwind", client, "c2")
    assert res.mode == "incremental"
    after_a = stored(db, a)
    assert after_a["jobTitle"] == "Partial Title"
    assert after_a["manager"] == {"id": raw[a]["_managerId"]}, "a missing manager@delta means unchanged"
    assert after_a["displayName"] == raw[a]["displayName"], "properties not in a partial item are kept"
    after_b = stored(db, b)
    assert after_b["department"] == "Second" and "manager" not in after_b
    assert stored(db, c) is not None and stored(db, c)["displayName"] == raw[c]["displayName"]
    assert "manager@delta" not in after_b


def test_fold_page_keeps_order_newest_wins_and_removal_then_readd():
    """Pure fold of one page, as Graph may send it (same entity several times)."""
    page = [
        {"id": "u1", "jobTitle": "old"},
        {"id": "u2", "@removed": {"reason": "changed"}},
        {"id": "u1", "jobTitle": "new", "manager@delta": [{"@odata.type": "#microsoft.graph.user", "id": "m1"}]},
        {"id": "u2", "displayName": "back"},
        {"id": "u3", "displayName": "x"},
        {"id": "u3", "@removed": {"reason": "deleted"}},
        {"id": "u4", "manager@delta": [{"id": "m9", "@removed": {"reason": "deleted"}}]},
    ]
    upserts, removed = extract.fold_page(page)
    assert upserts["u1"] == {"id": "u1", "jobTitle": "new", "manager": {"id": "m1"}}
    assert upserts["u2"] == {"id": "u2", "displayName": "back"} and "u2" not in removed
    assert "u3" not in upserts and removed == {"u3": True}
    assert upserts["u4"] == {"id": "u4", "manager": None}


def test_snapshot_reads_back_mapped_directory_extension_targets(sandbox, tmp_path):
    """A directory extension mapped as a target is $select-ed by the target snapshot, so the planner sees
    its current value; Graph refuses to $select an unregistered one, which is skipped with a warning."""
    t = grant(sandbox, "fabrikam")
    with GraphClient(connection(sandbox.info, t)) as c:
        cost = c.ensure_extensions(t["app_object_id"], ["xtsCostCenter"])["xtsCostCenter"]
        uid = users(sandbox, "fabrikam")[3]["id"]
        c.request("PATCH", f"users/{uid}", json_body={cost: "CC-42"})
        missing = vocabulary.extension_name(t["client_id"], "neverRegistered")
        db = tmp_path / "t.duckdb"
        res = extract.snapshot_target(db, "fabrikam", c, t["client_id"], [], extra_select=[cost, missing],
                                      app_object_id=t["app_object_id"])
    with store.connect(db) as con:
        attrs = orjson.loads(con.execute("SELECT attrs FROM target_users WHERE tenant = 'fabrikam' AND id = ?",
                                         [uid]).fetchone()[0])
    assert attrs[cost] == "CC-42"
    assert any("neverRegistered" in w for w in res.warnings)


def test_an_expired_delta_token_resyncs_the_extraction(sandbox, tmp_path):
    """devblogs "Duration of change tracking tokens for identity and education resources": past seven days
    a delta link gets "a BadRequest response with the error code 'syncStateNotFound'"; the extraction then
    reads everything again and drops what it no longer sees."""
    db = tmp_path / "r.duckdb"
    with GraphClient(connection(sandbox.info, grant(sandbox, "northwind"))) as c:
        assert extract.extract_source_users(db, "northwind", c, "r1").mode == "full"
    with store.connect(db) as con:
        con.execute("INSERT INTO raw_users SELECT tenant, 'ghost', data, seen_cycle, updated_at FROM raw_users "
                    "WHERE tenant = 'northwind' LIMIT 1")
    sandbox.admin("POST", "clock/advance", json={"seconds": 8 * 86400})
    with GraphClient(connection(sandbox.info, grant(sandbox, "northwind"))) as c:
        res = extract.extract_source_users(db, "northwind", c, "r2")
    assert res.mode == "resync" and res.dropped_unseen == 1 and stored(db, "ghost") is None
