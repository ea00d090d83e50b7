"""BatchWriter against the real sandbox: every kind of write, ordering, outcomes, idempotent creates."""

from __future__ import annotations

import collections
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.graph_helpers import LINK, connection, grant
from tests.graph_helpers import raw_users as users
from xts_pipeline.graph import GraphClient
from xts_pipeline.graph.concurrency import AdaptiveController
from xts_pipeline.graph.odata import eq
from xts_pipeline.graph.writer import BatchWriter, Outcome, WriteOp
from xts_pipeline.sandbox.process import SandboxProcess


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    with SandboxProcess(tmp_path_factory.mktemp("graph-writer"), seed="demo") as sb:
        yield sb
        sb.session().close()  # workaround: an idle admin keep-alive makes the sandbox's SIGTERM wait 20 s


@pytest.fixture(scope="module")
def target(sandbox):
    return grant(sandbox, "fabrikam")


@pytest.fixture(scope="module")
def client(sandbox, target):
    with GraphClient(connection(sandbox.info, target)) as c:
        yield c


@pytest.fixture(scope="module")
def ext(client, target):
    return client.ensure_extensions(target["app_object_id"], LINK)


def create_op(i: int, ext: dict, tag: str) -> WriteOp:
    src = f"{tag}-src-{i}"
    return WriteOp(
        op_id=f"{tag}-create-{i}", kind="create",
        invitation={"invitedUserEmailAddress": f"{tag}.user{i}@source.example",
                    "invitedUserDisplayName": f"{tag} user {i}", "invitedUserType": "Member"},
        patch={"department": f"dept {i % 7}", ext["xtsSourceObjectId"]: src,
               ext["xtsSourceTenantId"]: "11111111-1111-1111-1111-111111111111", ext["xtsSyncConfig"]: "src__fabrikam"},
        lookup_filter=str(eq(ext["xtsSourceObjectId"], src)),
    )


def run(client, ops, **kw) -> dict[str, Outcome]:
    outs = list(BatchWriter(client, **kw).run(ops))
    by_id = {o.op_id: o for o in outs}
    assert len(by_id) == len(outs) == len(ops), "exactly one outcome per op"
    return by_id


def test_every_kind_of_write(client, sandbox, target, ext):
    creates = [create_op(i, ext, "kinds") for i in range(25)]
    out = run(client, creates)
    assert all(o.status == "success" and o.target_id for o in out.values()), out
    ids = [out[op.op_id].target_id for op in creates]
    state = {u["id"]: u for u in users(sandbox, target["name"])}
    for i, uid in enumerate(ids):
        u = state[uid]
        assert u["mail"] == f"kinds.user{i}@source.example" and u["creationType"] == "Invitation"
        assert u["department"] == f"dept {i % 7}" and u[ext["xtsSourceObjectId"]] == f"kinds-src-{i}"
    ops = [
        WriteOp("u0", "update", user_id=ids[0], patch={"jobTitle": "Engineer"}),
        WriteOp("m1", "manager", user_id=ids[1], manager_id=ids[0]),
        WriteOp("d2", "delete", user_id=ids[2]),
        WriteOp("d3", "delete", user_id=ids[3]),
        # same user, in order: delete then restore-with-patch (never in one batch)
        WriteOp("r3", "restore", user_id=ids[3], patch={"jobTitle": "Back"}),
        WriteOp("gone", "delete", user_id="00000000-0000-0000-0000-000000000404"),
        WriteOp("bad", "update", user_id=ids[4], patch={"notAProperty": 1}),
        WriteOp("invalid", "update", user_id=None, patch={"x": 1}),
        WriteOp("noop", "update", user_id=ids[5], patch={}),
        WriteOp("unjson", "update", user_id=ids[6], patch={"city": {1, 2}}),
    ]
    out = run(client, ops)
    assert {k: o.status for k, o in out.items()} == {
        "u0": "success", "m1": "success", "d2": "success", "d3": "success", "r3": "success",
        "gone": "skipped", "bad": "failed", "invalid": "failed", "noop": "skipped",
        "unjson": "failed"}
    assert out["bad"].error_code and target["name"] in out["bad"].error_message and ids[4] in out["bad"].error_message
    state = {u["id"]: u for u in users(sandbox, target["name"], deleted=True)}
    assert state[ids[0]]["jobTitle"] == "Engineer"
    assert state[ids[1]]["_managerId"] == ids[0]
    assert state[ids[2]]["_state"] == "deleted"
    assert state[ids[3]]["_state"] == "active" and state[ids[3]]["jobTitle"] == "Back"


def test_lost_responses_never_duplicate_creates(client, sandbox, target, ext):
    """Resets drop answers after the write was applied; 5xx too: the writer looks up before re-inviting."""
    sandbox.admin("PUT", "/_sandbox/faults", json={"spec": "kind=write,reset=0.02,5xx=0.1,429=0.2", "seed": 3})
    try:
        writer = BatchWriter(client)
        ops = [create_op(i, ext, "lost") for i in range(60)]
        outs = list(writer.run(ops))
    finally:
        sandbox.admin("PUT", "/_sandbox/faults", json={"spec": "", "seed": 0})
    assert len(outs) == 60 and all(o.status == "success" for o in outs), [o for o in outs if o.status != "success"]
    assert writer.stats.lookups > 0 and writer.stats.transport_errors > 0 and writer.stats.throttled > 0
    mine = [u for u in users(sandbox, target["name"]) if (u.get("mail") or "").startswith("lost.")]
    per_mail = collections.Counter(u["mail"] for u in mine)
    assert len(per_mail) == 60 and set(per_mail.values()) == {1}
    assert all(u[ext["xtsSourceObjectId"]].startswith("lost-src-") for u in mine)


def test_adopts_an_existing_user_found_by_lookup(client, sandbox, target, ext):
    """A create whose first answer is lost and whose user exists is adopted, not invited again."""
    first = run(client, [create_op(0, ext, "adopt")])["adopt-create-0"]
    sandbox.admin("PUT", "/_sandbox/faults", json={"spec": "kind=write,reset=1.0", "seed": 1})
    writer = BatchWriter(client, max_attempts=3)
    try:
        out = list(writer.run([create_op(0, ext, "adopt")]))[0]
    finally:
        sandbox.admin("PUT", "/_sandbox/faults", json={"spec": "", "seed": 0})
    # Every write's answer is lost (a reset runs the request first): the invite is looked up (reads are not
    # faulted) and adopted, its PATCH is read back and found applied -> success, never a second user.
    assert out.adopted and out.target_id == first.target_id and out.status == "success", out
    assert writer.stats.lookups >= 1 and writer.stats.readbacks >= 1
    mine = [u for u in users(sandbox, target["name"]) if u.get("mail") == "adopt.user0@source.example"]
    assert len(mine) == 1 and mine[0]["department"] == "dept 0"


def change_events(sandbox, target) -> int:
    """Writes that took effect on the target: the sandbox's change log (read-only)."""
    import sqlite3

    con = sqlite3.connect(f"file:{sandbox.state_dir / 'sandbox.sqlite3'}?mode=ro", uri=True)
    try:
        return con.execute("SELECT count(*) FROM changes WHERE tenant_id = ?", [target["tenant_id"]]).fetchone()[0]
    finally:
        con.close()


@pytest.mark.parametrize("n, spec", enumerate(["kind=write,reset=1.0", "kind=write,reset=0.3,5xx=0.3"]))
def test_a_write_whose_answer_was_lost_lands_exactly_once(client, sandbox, target, n, spec):
    """A reset runs the write and drops its answer; a 5xx drops the write. Either way the writer reads the
    user back instead of re-sending blind, so each PATCH and manager reference takes effect exactly once."""
    victims = [u["id"] for u in users(sandbox, target["name"])[70 + 12 * n:82 + 12 * n]]
    tag = spec.split(",")[1]
    ops = [WriteOp(f"rb{i}", "update", user_id=uid, patch={"officeLocation": f"read back {tag} {i}",
                                                            "businessPhones": [f"+1 555 01{i:02d}"]})
           for i, uid in enumerate(victims[:10])]
    ops += [WriteOp("rb-mgr", "manager", user_id=victims[10], manager_id=victims[11]),
            WriteOp("rb-unmgr", "manager", user_id=victims[11], manager_id=None)]
    run(client, [WriteOp("rb-pre", "manager", user_id=victims[11], manager_id=victims[10])])
    before = change_events(sandbox, target)
    sandbox.admin("PUT", "/_sandbox/faults", json={"spec": spec, "seed": 11})
    writer = BatchWriter(client, max_attempts=8)
    try:
        outs = {o.op_id: o for o in writer.run(ops)}
    finally:
        sandbox.admin("PUT", "/_sandbox/faults", json={"spec": "", "seed": 0})
    assert all(o.status == "success" for o in outs.values()), [o for o in outs.values() if o.status != "success"]
    assert writer.stats.readbacks > 0
    assert change_events(sandbox, target) - before == len(ops), "a write was lost or applied twice"
    state = {u["id"]: u for u in users(sandbox, target["name"])}
    assert all(state[op.user_id]["officeLocation"] == op.patch["officeLocation"] for op in ops if op.patch)
    assert state[victims[10]]["_managerId"] == victims[11] and not state[victims[11]].get("_managerId")


def test_per_user_order_is_kept_under_throttling(client, sandbox, target):
    """Several updates of one user run in order even when 429s delay some of them."""
    sandbox.admin("PUT", "/_sandbox/faults", json={"spec": "kind=write,429=0.3", "seed": 5})
    try:
        victims = [u["id"] for u in users(sandbox, target["name"])[:60]]
        ops = [WriteOp(f"p{i}", "update", user_id=uid, patch={"officeLocation": f"pace {i}"})
               for i, uid in enumerate(victims * 3)]
        writer = BatchWriter(client, controller=AdaptiveController(initial_rate=500.0))
        outs = list(writer.run(ops))
    finally:
        sandbox.admin("PUT", "/_sandbox/faults", json={"spec": "", "seed": 0})
    assert len(outs) == len(ops) and all(o.status == "success" for o in outs)
    assert writer.stats.throttled > 0
    last = {uid: f"pace {i}" for i, uid in enumerate(victims * 3)}
    state = {u["id"]: u for u in users(sandbox, target["name"])}
    assert all(state[uid]["officeLocation"] == v for uid, v in last.items())


def test_config_errors_fail_every_op_fast_with_an_actionable_message(client, sandbox, target, ext):
    """Missing permission: each op fails naming tenant, user and permission; bad secret: fast AuthError."""
    grant(sandbox, target["name"], ["User.Read.All"])  # invitations need User.Invite.All (or ReadWrite)
    try:
        with GraphClient(client.conn) as fresh:
            outs = list(BatchWriter(fresh).run([create_op(i, ext, "noperm") for i in range(3)]))
    finally:
        grant(sandbox, target["name"])
    assert [o.status for o in outs] == ["failed"] * 3
    assert all("User.Invite.All" in o.error_message and target["name"] in o.error_message for o in outs)
    assert all("noperm.user" in o.error_message and o.error_code == "Authorization_RequestDenied" for o in outs)

    import dataclasses
    bad_conn = dataclasses.replace(client.conn, client_secret="not-the-secret")
    with GraphClient(bad_conn) as bad:
        ops = [WriteOp(f"b{i}", "update", user_id=f"id-{i}", patch={"city": "x"}) for i in range(45)]
        outs = list(BatchWriter(bad).run(ops))
    assert len(outs) == 45 and {o.status for o in outs} == {"failed"}
    assert all(o.error_code == "AuthError" and "client" in o.error_message for o in outs)
    assert target["client_secret"] not in repr(outs)


EXAMPLES = itertools.count()
OP_KINDS = st.sampled_from(["update", "update", "delete", "restore"])


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=st.lists(st.tuples(st.integers(0, 5), OP_KINDS), min_size=5, max_size=25),
       fault_seed=st.integers(0, 10_000))
def test_property_one_outcome_per_op_and_final_state_matches_a_sequential_model(
        client, sandbox, target, ext, plan, fault_seed):
    """Under random faults, any mix of ops ends with one outcome each and the state a serial run gives."""
    tag = f"prop{next(EXAMPLES)}"  # fresh users per example, even when hypothesis replays a seed
    base = run(client, [create_op(i, ext, tag) for i in range(6)])
    ids = [base[f"{tag}-create-{i}"].target_id for i in range(6)]
    model = {uid: {"active": True, "jobTitle": None} for uid in ids}
    ops, expect = [], {}
    for n, (who, kind) in enumerate(plan):
        uid, m = ids[who], model[ids[who]]
        op_id = f"op{n}"
        if kind == "update":
            ops.append(WriteOp(op_id, "update", user_id=uid, patch={"jobTitle": f"t{n}"}))
            if m["active"]:
                m["jobTitle"], expect[op_id] = f"t{n}", {"success"}
            else:
                expect[op_id] = {"failed"}
        elif kind == "delete":
            ops.append(WriteOp(op_id, "delete", user_id=uid))
            expect[op_id] = {"success"} if m["active"] else {"skipped", "success"}
            m["active"] = False
        else:
            ops.append(WriteOp(op_id, "restore", user_id=uid))
            expect[op_id] = {"success"} if not m["active"] else {"failed", "success"}
            m["active"] = True
    sandbox.admin("PUT", "/_sandbox/faults", json={"spec": "kind=write,429=0.2,5xx=0.1,reset=0.03",
                                                   "seed": fault_seed})
    try:
        out = run(client, ops)
    finally:
        sandbox.admin("PUT", "/_sandbox/faults", json={"spec": "", "seed": 0})
    for op_id, allowed in expect.items():
        assert out[op_id].status in allowed, (op_id, out[op_id])
    state = {u["id"]: u for u in users(sandbox, target["name"], deleted=True)}
    for uid, m in model.items():
        assert (state[uid]["_state"] == "active") == m["active"], uid
        if m["active"]:
            assert state[uid].get("jobTitle") == m["jobTitle"], uid
