"""Invitations, directory extensions, groups/members and cross-tenant access partner policies."""

from __future__ import annotations

import uuid

import pytest

INVITE = {"inviteRedirectUrl": "https://myapps.microsoft.com", "sendInvitationMessage": False}


def test_invitation_creates_the_documented_external_user(sandbox, graph):
    g = graph(sandbox, "contoso")
    email = f"Ana.O'Neil.{uuid.uuid4().hex[:6]}@fabrikam.onmicrosoft.com"
    r = g.post("/invitations", json={**INVITE, "invitedUserEmailAddress": email, "invitedUserType": "Member",
                                     "invitedUserDisplayName": "Ana O'Neil"})
    assert r.status_code == 201, r.text
    inv = r.json()
    # the documented response body of POST /invitations
    for key in ("id", "inviteRedeemUrl", "invitedUserDisplayName", "invitedUserEmailAddress", "invitedUserType",
                "sendInvitationMessage", "inviteRedirectUrl", "status", "invitedUser", "invitedUserMessageInfo"):
        assert key in inv
    assert inv["status"] == "PendingAcceptance" and inv["invitedUserType"] == "Member"
    user = g.get(f"/users/{inv['invitedUser']['id']}?$select=userPrincipalName,mail,userType,creationType,"
                 "externalUserState,displayName,accountEnabled").json()
    local, domain = email.split("@")
    assert user["userPrincipalName"] == f"{local}_{domain}#EXT#@contoso.onmicrosoft.com"
    assert (user["mail"], user["userType"], user["creationType"], user["externalUserState"]) == (
        email, "Member", "Invitation", "PendingAcceptance")
    assert user["displayName"] == "Ana O'Neil" and user["accountEnabled"] is True
    # inviting the same address again re-invites the same user instead of duplicating it
    again = g.post("/invitations", json={**INVITE, "invitedUserEmailAddress": email}).json()
    assert again["invitedUser"]["id"] == inv["invitedUser"]["id"]
    # default invitedUserType is Guest
    guest = g.post("/invitations", json={**INVITE, "invitedUserEmailAddress": f"g{uuid.uuid4().hex[:6]}@x.example"})
    uid = guest.json()["invitedUser"]["id"]
    assert g.get(f"/users/{uid}?$select=userType").json()["userType"] == "Guest"


@pytest.mark.parametrize("body", [{"invitedUserEmailAddress": "not-an-address"},
                                  {"invitedUserEmailAddress": "a@b.example", "inviteRedirectUrl": ""},
                                  {"invitedUserEmailAddress": "a@b.example", "invitedUserType": "Admin"}])
def test_bad_invitations_get_400(sandbox, graph, body):
    r = graph(sandbox, "contoso").post("/invitations", json={**INVITE, **body})
    assert r.status_code == 400 and r.json()["error"]["message"]


def test_tenant_that_disallows_invitations_refuses(make_sandbox, graph):
    sb = make_sandbox(seed="demo")
    sb.admin("PUT", "tenants/northwind/invitations", json={"allowed": False})
    r = graph(sb, "northwind").post("/invitations", json={**INVITE, "invitedUserEmailAddress": "z@y.example"})
    assert r.status_code == 403 and "invitations" in r.json()["error"]["message"].lower()
    sb.admin("PUT", "tenants/northwind/invitations", json={"allowed": True})
    r = graph(sb, "northwind").post("/invitations", json={**INVITE, "invitedUserEmailAddress": "z@y.example"})
    assert r.status_code == 201


def test_directory_extensions_register_patch_filter_select(make_sandbox, graph):
    sb = make_sandbox(seed="demo")
    t = sb.tenant("fabrikam")
    g = graph(sb, "fabrikam")
    uid = sb.admin("GET", "tenants/fabrikam/users")["value"][4]["id"]
    full = f"extension_{t['client_id'].replace('-', '')}_xtsSourceObjectId"
    r = g.patch(f"/users/{uid}", json={full: "abc"})
    assert r.status_code == 400 and full in r.json()["error"]["message"]
    r = g.post(f"/applications/{t['app_object_id']}/extensionProperties",
               json={"name": "xtsSourceObjectId", "dataType": "String", "targetObjects": ["User"]})
    assert r.status_code == 201 and r.json()["name"] == full
    dup = g.post(f"/applications/{t['app_object_id']}/extensionProperties",
                 json={"name": "xtsSourceObjectId", "targetObjects": ["User"]})
    assert dup.status_code == 400 and "already exists" in dup.json()["error"]["message"]
    listed = g.get(f"/applications/{t['app_object_id']}/extensionProperties").json()["value"]
    assert [e["name"] for e in listed] == [full]
    assert g.post(f"/applications/{t['client_id']}/extensionProperties", json={"name": "x"}).status_code == 404
    assert g.patch(f"/users/{uid}", json={full: "O'Brien-1"}).status_code == 204
    got = g.get(f"/users/{uid}?$select=id,{full}").json()
    assert got[full] == "O'Brien-1"
    found = g.get("/users", params={"$filter": f"{full} eq 'O''Brien-1'", "$select": f"id,{full}"}).json()["value"]
    assert [u["id"] for u in found] == [uid]
    lower = g.get("/users", params={"$filter": f"{full} eq 'o''brien-1'", "$select": "id"}).json()["value"]
    assert [u["id"] for u in lower] == [uid]  # case-insensitive, like the directory
    assert g.get("/users", params={"$filter": f"{full} eq 'Brien-1'"}).json()["value"] == []
    # values must fit the registered dataType
    assert g.patch(f"/users/{uid}", json={full: 42}).status_code == 400
    r = g.post(f"/applications/{t['app_object_id']}/extensionProperties",
               json={"name": "xtsFlag", "dataType": "Boolean", "targetObjects": ["User"]})
    flag = r.json()["name"]
    assert g.patch(f"/users/{uid}", json={flag: "yes"}).status_code == 400
    assert g.patch(f"/users/{uid}", json={flag: True}).status_code == 204
    found = g.get("/users", params={"$filter": f"{flag} eq true", "$select": "id"}).json()["value"]
    assert [u["id"] for u in found] == [uid]
    n = g.get("/users", params={"$filter": f"{full} ne null", "$count": "true"},
              headers={"ConsistencyLevel": "eventual"}).json()["@odata.count"]
    assert n == 1


def test_groups_and_members(sandbox, graph):
    g = graph(sandbox, "contoso")
    groups = g.all_pages("/groups?$top=5")
    assert groups
    for grp in groups:
        assert {"displayName", "groupTypes", "membershipRule", "membershipRuleProcessingState", "securityEnabled",
                "isAssignableToRole"} <= set(grp)
    dynamic = [x for x in groups if "DynamicMembership" in x["groupTypes"]]
    assert dynamic and all(x["membershipRule"] for x in dynamic)
    assert any(x["isAssignableToRole"] for x in groups)
    assigned = next(x for x in groups if x["displayName"].startswith("XTS Sync"))
    one = g.get(f"/groups/{assigned['id']}?$select=displayName").json()
    assert one["displayName"] == assigned["displayName"]
    members = g.all_pages(f"/groups/{assigned['id']}/members?$select=id,userPrincipalName&$top=50")
    assert members and all(m["@odata.type"] == "#microsoft.graph.user" for m in members)
    assert g.get(f"/groups/{uuid.uuid4()}/members").status_code == 404
    assert g.get("/groups?$filter=securityEnabled eq true&$select=id").status_code == 200


def test_admin_routes_upsert_a_group_and_replace_its_members(make_sandbox, graph):
    """Sandbox-only (docs/sandbox.md, admin routes): Graph's group writes are not in the sandbox, so tests that
    need a group to change use PUT /_sandbox/tenants/{t}/groups/{id}[/members]."""
    from xts_pipeline.sandbox.process import SandboxError

    sb = make_sandbox()
    g = graph(sb, "contoso")
    gid = str(uuid.uuid4())
    body = {"displayName": "Admin Made", "groupTypes": ["DynamicMembership"], "securityEnabled": True,
            "mailEnabled": False, "isAssignableToRole": False, "membershipRule": '(user.city -eq "Oslo")',
            "membershipRuleProcessingState": "On"}
    assert sb.admin("PUT", f"tenants/contoso/groups/{gid}", json=body)["id"] == gid
    got = g.get(f"/groups/{gid}?$select=displayName,membershipRule").json()
    assert (got["displayName"], got["membershipRule"]) == ("Admin Made", '(user.city -eq "Oslo")')
    sb.admin("PUT", f"tenants/contoso/groups/{gid}", json={**body, "membershipRule": '(user.city -eq "Bergen")'})
    assert g.get(f"/groups/{gid}?$select=membershipRule").json()["membershipRule"] == '(user.city -eq "Bergen")'
    users = [u["id"] for u in sb.admin("GET", "tenants/contoso/users")["value"][:3]]
    sb.admin("PUT", f"tenants/contoso/groups/{gid}/members", json={"ids": users})
    assert sorted(m["id"] for m in g.all_pages(f"/groups/{gid}/members?$select=id")) == sorted(users)
    sb.admin("PUT", f"tenants/contoso/groups/{gid}/members", json={"ids": users[:1]})  # replaces, not adds
    assert [m["id"] for m in g.all_pages(f"/groups/{gid}/members?$select=id")] == users[:1]
    for path, bad in ((f"groups/{gid}/members", {"ids": [str(uuid.uuid4())]}), (f"groups/{gid}/members", {}),
                      (f"groups/{uuid.uuid4()}/members", {"ids": []}), (f"groups/{gid}", {"id": "other"})):
        with pytest.raises(SandboxError, match=r"failed: 40[04]"):
            sb.admin("PUT", f"tenants/contoso/{path}", json=bad)


def test_partner_policy_identity_sync_and_consent(make_sandbox, graph):
    sb = make_sandbox(seed="demo")
    g = graph(sb, "contoso")
    fab = sb.tenant("fabrikam")["tenant_id"]
    sync = g.get(f"/policies/crossTenantAccessPolicy/partners/{fab}/identitySynchronization").json()
    assert sync["userSyncInbound"]["isSyncAllowed"] is True and sync["tenantId"] == fab
    partner = g.get(f"/policies/crossTenantAccessPolicy/partners/{fab}").json()
    assert partner["automaticUserConsentSettings"] == {"inboundAllowed": True, "outboundAllowed": True}
    assert "identitySynchronization" not in partner
    # the demo app may read policies but not change them
    body = {"displayName": "fabrikam", "userSyncInbound": {"isSyncAllowed": False}}
    path = f"/policies/crossTenantAccessPolicy/partners/{fab}/identitySynchronization"
    assert g.put(path, json=body).status_code == 403
    sb.admin("PUT", "tenants/contoso/permissions",
             json={"permissions": [*sb.tenant("contoso")["permissions"], "Policy.ReadWrite.CrossTenantAccess"]})
    g = graph(sb, "contoso")
    assert g.put(path, json=body).status_code == 204
    assert g.get(path).json()["userSyncInbound"]["isSyncAllowed"] is False
    assert g.put(path, json={"userSyncInbound": {}}).status_code == 400
    unknown = str(uuid.uuid4())
    assert g.get(f"/policies/crossTenantAccessPolicy/partners/{unknown}/identitySynchronization").status_code == 404
    org = g.get("/organization").json()["value"][0]
    assert org["id"] == sb.tenant("contoso")["tenant_id"]
