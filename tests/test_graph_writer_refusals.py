"""What the writer makes of Graph's refusals inside a $batch: one user's failure, or the pair's credentials.

api/user-update.md: "Updating other users' businessPhones, mobilePhone, or otherMails property is only
allowed on users who are non-administrators" - Graph answers 403 Authorization_RequestDenied, the same
code as for a missing application permission; only the latter is a credential failure.
"""

from __future__ import annotations

import uuid

import pytest

from tests.graph_helpers import ALL_PERMS, connection, grant
from tests.graph_helpers import raw_users as users
from xts_pipeline.graph import GraphClient
from xts_pipeline.graph.writer import BatchWriter, WriteOp
from xts_pipeline.sandbox.process import SandboxProcess


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    with SandboxProcess(tmp_path_factory.mktemp("graph-writer-refusals"), seed="demo") as sb:
        yield sb
        sb.session().close()


def run(sandbox, tenant: str, ops: list[WriteOp]) -> dict:
    with GraphClient(connection(sandbox.info, sandbox.tenant(tenant))) as client:
        return {o.op_id: o for o in BatchWriter(client).run(ops)}


def admin_and_plain(sandbox, graph) -> tuple[str, str]:
    g = graph(sandbox, "contoso")
    role = next(r for r in g.get("/directoryRoles").json()["value"]
                if r["displayName"] not in ("Directory Readers", "Guest Inviter"))
    admin = next(m["id"] for m in g.get(f"/directoryRoles/{role['id']}/members").json()["value"]
                 if m["@odata.type"] == "#microsoft.graph.user")
    holders = {m["id"] for r in g.get("/directoryRoles").json()["value"]
               for m in g.get(f"/directoryRoles/{r['id']}/members").json()["value"]}
    plain = next(u["id"] for u in users(sandbox, "contoso") if u["id"] not in holders)
    return admin, plain


def test_per_user_403_and_400_are_that_users_failure_with_graphs_code(sandbox, graph):
    grant(sandbox, "contoso", [*ALL_PERMS, "RoleManagement.Read.Directory"])
    admin, plain = admin_and_plain(sandbox, graph)
    outs = run(sandbox, "contoso", [
        WriteOp("phone-admin", "update", user_id=admin, patch={"mobilePhone": "+1 425 555 0100"}),
        WriteOp("phone-plain", "update", user_id=plain, patch={"mobilePhone": "+1 425 555 0101"}),
        WriteOp("too-long", "update", user_id=plain + "", patch={"employeeId": "1" * 17}),
    ])
    refused = outs["phone-admin"]
    assert refused.status == "failed" and refused.http_status == 403
    assert refused.error_code == "Authorization_RequestDenied" and not refused.credential_failure
    assert "Insufficient privileges" in refused.error_message and admin in refused.error_message
    assert outs["phone-plain"].status == "success"
    bad = outs["too-long"]
    assert bad.status == "failed" and bad.error_code == "Request_BadRequest" and not bad.credential_failure
    assert "employeeId" in bad.error_message


def test_a_missing_app_permission_is_a_credential_failure(sandbox):
    grant(sandbox, "northwind", ["User.Read.All"])
    try:
        uid = users(sandbox, "northwind")[0]["id"]
        out = run(sandbox, "northwind", [WriteOp("w", "update", user_id=uid, patch={"jobTitle": "x"})])["w"]
        assert out.status == "failed" and out.http_status == 403 and out.credential_failure
        assert "User.ReadWrite.All" in out.error_message
    finally:
        grant(sandbox, "northwind", ALL_PERMS)


def test_an_invitation_that_returns_an_existing_user_does_not_overwrite_it(sandbox):
    """api/invitation-post.md: inviting an address that already has a user returns that user; the writer
    records a Failure with Graph's facts and writes nothing to it."""
    grant(sandbox, "fabrikam", ALL_PERMS)
    guest = next(u for u in users(sandbox, "fabrikam") if u.get("creationType") == "Invitation")
    fresh = f"{uuid.uuid4().hex[:8]}@newcomer.example"
    outs = run(sandbox, "fabrikam", [
        WriteOp("old", "create", invitation={"invitedUserEmailAddress": guest["mail"]},
                patch={"department": "Overwritten?"}),
        WriteOp("new", "create", invitation={"invitedUserEmailAddress": fresh}, patch={"department": "Fresh"}),
    ])
    old = outs["old"]
    assert old.status == "failed" and old.error_code == "ExistingUserReturned"
    assert guest["id"] in old.error_message and guest["userPrincipalName"] in old.error_message
    after = next(u for u in users(sandbox, "fabrikam") if u["id"] == guest["id"])
    assert after.get("department") == guest.get("department")
    assert outs["new"].status == "success"
    made = next(u for u in users(sandbox, "fabrikam") if u["id"] == outs["new"].target_id)
    assert made["department"] == "Fresh"
