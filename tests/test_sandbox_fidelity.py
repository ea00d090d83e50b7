"""The sandbox answers as Microsoft documents: each test names the page (and quotes it) it encodes."""

from __future__ import annotations

import time
import uuid

import pytest

EVENTUAL = {"ConsistencyLevel": "eventual"}


@pytest.fixture(scope="module")
def sb(tmp_path_factory):
    from xts_pipeline.sandbox.process import SandboxProcess

    with SandboxProcess(tmp_path_factory.mktemp("fidelity"), seed="demo") as s:
        yield s
        s.session().close()


def err(r, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, r.text[:500]
    body = r.json()["error"]
    if code:
        assert body["code"] == code, body
    assert set(body["innerError"]) >= {"date", "request-id", "client-request-id"}
    return body


def new_user(g, domain: str, **extra) -> dict:
    nick = "f" + uuid.uuid4().hex[:10]
    r = g.post("/users", json={"accountEnabled": True, "displayName": nick, "mailNickname": nick,
                               "userPrincipalName": f"{nick}@{domain}", "passwordProfile": {"password": "x"},
                               **extra})
    assert r.status_code == 201, r.text
    return r.json()


# ---- writes Graph refuses ---------------------------------------------------------------------------
@pytest.mark.parametrize(("prop", "limit"), [("employeeId", 16), ("department", 64), ("companyName", 64),
                                             ("displayName", 256), ("jobTitle", 128), ("postalCode", 40),
                                             ("streetAddress", 1024), ("givenName", 64), ("city", 128)])
def test_values_over_the_documented_maximum_length_resources_user(sb, graph, prop, limit):
    """resources/user.md: "Maximum length is N characters" (employeeId: "The maximum length is 16")."""
    g = graph(sb, "fabrikam")
    uid = new_user(g, "fabrikam.onmicrosoft.com")["id"]
    assert g.patch(f"/users/{uid}", json={prop: "x" * limit}).status_code == 204
    body = err(g.patch(f"/users/{uid}", json={prop: "x" * (limit + 1)}), 400, "Request_BadRequest")
    assert prop in body["message"]
    got = g.get(f"/users/{uid}?$select={prop}").json()[prop]
    assert got == "x" * limit, "a refused write stores nothing"


def test_display_name_cannot_be_cleared_and_one_business_phone_resources_user(sb, graph):
    """resources/user.md: displayName "cannot be cleared during updates"; businessPhones "Although this is a
    string collection, only one number can be set for this property"."""
    g = graph(sb, "fabrikam")
    uid = new_user(g, "fabrikam.onmicrosoft.com")["id"]
    err(g.patch(f"/users/{uid}", json={"displayName": None}), 400)
    err(g.patch(f"/users/{uid}", json={"businessPhones": ["+1 1", "+1 2"]}), 400)
    assert g.patch(f"/users/{uid}", json={"businessPhones": ["+1 425 555 0100"]}).status_code == 204


def test_accented_upn_and_mail_are_refused_resources_user(sb, graph):
    """resources/user.md: userPrincipalName and mail/otherMails "can't contain accent characters"."""
    g = graph(sb, "fabrikam")
    uid = new_user(g, "fabrikam.onmicrosoft.com")["id"]
    err(g.patch(f"/users/{uid}", json={"userPrincipalName": "josé@fabrikam.onmicrosoft.com"}), 400)
    err(g.patch(f"/users/{uid}", json={"mail": "josé@fabrikam.example"}), 400)
    err(g.patch(f"/users/{uid}", json={"otherMails": ["zoë@x.example"]}), 400)
    assert g.patch(f"/users/{uid}", json={"mail": "jose@fabrikam.example"}).status_code == 204


def test_mail_another_user_has_is_refused_on_patch_resources_user(sb, graph):
    """resources/user.md: a mail change also updates proxyAddresses, which are unique in the directory."""
    g = graph(sb, "fabrikam")
    a, b = (new_user(g, "fabrikam.onmicrosoft.com")["id"] for _ in range(2))
    mail = f"{uuid.uuid4().hex[:8]}@fabrikam.example"
    assert g.patch(f"/users/{a}", json={"mail": mail}).status_code == 204
    body = err(g.patch(f"/users/{b}", json={"mail": mail.upper()}), 400, "Request_BadRequest")
    assert "proxyAddresses" in body["message"]
    assert g.patch(f"/users/{a}", json={"mail": mail}).status_code == 204  # its own mail again is fine
    proxies = g.get(f"/users/{a}?$select=proxyAddresses").json()["proxyAddresses"]
    assert proxies == [f"SMTP:{mail}"]


def test_extension_strings_over_256_and_bad_target_objects_resources_extensionproperty(sb, graph):
    """resources/extensionproperty.md: String "256 characters maximum"; targetObjects from User, Group,
    AdministrativeUnit, Application, Device, Organization."""
    g = graph(sb, "northwind")
    t = sb.tenant("northwind")
    url = f"/applications/{t['app_object_id']}/extensionProperties"
    for bad in (None, [], ["Users"], "User"):
        err(g.post(url, json={"name": "fidBad", "dataType": "String", "targetObjects": bad}), 400)
    name = g.post(url, json={"name": "fidLong", "dataType": "String", "targetObjects": ["User"]}).json()["name"]
    uid = new_user(g, "northwind.onmicrosoft.com")["id"]
    assert g.patch(f"/users/{uid}", json={name: "y" * 256}).status_code == 204
    err(g.patch(f"/users/{uid}", json={name: "y" * 257}), 400)


def test_undeclared_invitation_properties_are_refused_resources_invitation(sb, graph):
    """resources/invitation.md lists the invitation's properties; a user attribute is not one of them."""
    g = graph(sb, "fabrikam")
    body = {"invitedUserEmailAddress": f"{uuid.uuid4().hex[:8]}@elsewhere.example",
            "inviteRedirectUrl": "https://myapps.microsoft.com", "sendInvitationMessage": False}
    err(g.post("/invitations", json={**body, "department": "Sales"}), 400)
    r = g.post("/invitations", json=body)
    assert r.status_code == 201
    invited = g.get(f"/users/{r.json()['invitedUser']['id']}?$select=showInAddressList,creationType").json()
    # resources/user.md: "For users invited through the invitation manager, this property will be set to false."
    assert invited["showInAddressList"] is False and invited["creationType"] == "Invitation"


def test_administrators_phones_and_other_mails_are_refused_user_update(sb, graph):
    """api/user-update.md: "Updating other users' businessPhones, mobilePhone, or otherMails property is only
    allowed on users who are non-administrators or assigned one of the following roles: Directory Readers,
    Guest Inviter, Message Center Reader, and Reports Reader." Other properties of the admin still update."""
    g = graph(sb, "contoso")
    roles = g.get("/directoryRoles").json()["value"]
    admin_role = next(r for r in roles if r["displayName"] not in ("Directory Readers", "Guest Inviter"))
    members = g.get(f"/directoryRoles/{admin_role['id']}/members").json()["value"]
    admin = next(m for m in members if m["@odata.type"] == "#microsoft.graph.user")
    for patch in ({"mobilePhone": "+1 425 555 0199"}, {"businessPhones": ["+1 425 555 0198"]},
                  {"otherMails": ["a@b.example"]}):
        body = err(g.patch(f"/users/{admin['id']}", json=patch), 403, "Authorization_RequestDenied")
        assert body["message"] == "Insufficient privileges to complete the operation."
    assert g.patch(f"/users/{admin['id']}", json={"jobTitle": "Still editable"}).status_code == 204
    plain = new_user(g, "contoso.onmicrosoft.com")["id"]
    assert g.patch(f"/users/{plain}", json={"mobilePhone": "+1 425 555 0197"}).status_code == 204


def test_on_premises_extension_attributes_resources_onpremisesextensionattributes(sb, graph):
    """resources/onpremisesextensionattributes.md: "For a cloud-only user (where onPremisesSyncEnabled is false
    or null), these properties can be set during creation or update"; for a synced user they are
    "read-only"; "Each attribute can store up to 1024 characters"."""
    g = graph(sb, "fabrikam")
    uid = new_user(g, "fabrikam.onmicrosoft.com")["id"]
    got = g.get(f"/users/{uid}?$select=onPremisesExtensionAttributes").json()["onPremisesExtensionAttributes"]
    assert got == {f"extensionAttribute{i}": None for i in range(1, 16)}
    patch = {"onPremisesExtensionAttributes": {"extensionAttribute1": "cost-7"}}
    assert g.patch(f"/users/{uid}", json=patch).status_code == 204
    got = g.get(f"/users/{uid}?$select=onPremisesExtensionAttributes").json()["onPremisesExtensionAttributes"]
    assert got["extensionAttribute1"] == "cost-7" and got["extensionAttribute2"] is None
    err(g.patch(f"/users/{uid}", json={"onPremisesExtensionAttributes": {"extensionAttribute2": "z" * 1025}}), 400)
    err(g.patch(f"/users/{uid}", json={"onPremisesExtensionAttributes": {"extensionAttribute16": "z"}}), 400)
    sb.admin("PATCH", f"tenants/fabrikam/users/{uid}", json={"onPremisesSyncEnabled": True})
    err(g.patch(f"/users/{uid}", json=patch), 400)


# ---- valid requests Graph serves ----------------------------------------------------------------------
def test_documented_properties_select_and_collections_are_arrays_resources_user(sb, graph):
    """resources/user.md: faxNumber, proxyAddresses, identities, onPremisesExtensionAttributes are user
    properties; collections ("String collection", "Not nullable") come back as arrays."""
    g = graph(sb, "contoso")
    page = g.get("/users?$top=20&$select=id,faxNumber,proxyAddresses,identities,businessPhones,otherMails,"
                 "onPremisesExtensionAttributes").json()["value"]
    for u in page:
        assert isinstance(u["businessPhones"], list) and isinstance(u["otherMails"], list)
        assert isinstance(u["proxyAddresses"], list) and isinstance(u["identities"], list)
        assert isinstance(u["onPremisesExtensionAttributes"], dict)
    default = g.get("/users?$top=20").json()["value"]
    assert all(isinstance(u["businessPhones"], list) for u in default)


def test_cast_aliases_and_alternate_keys_openapi_paths(sb, graph):
    """OpenAPI paths: /directory/deletedItems/graph.user; api/directoryrole-get.md:
    directoryRoles(roleTemplateId='{roleTemplateId}'); api/application-get.md: applications(appId='{appId}')."""
    g = graph(sb, "contoso")
    t = sb.tenant("contoso")
    uid = new_user(g, "contoso.onmicrosoft.com")["id"]
    assert g.delete(f"/users/{uid}").status_code == 204
    for path in ("/directory/deletedItems/graph.user", "/directory/deletedItems/microsoft.graph.user"):
        r = g.get(path)
        assert r.status_code == 200 and uid in {u["id"] for u in r.json()["value"]}
    role = g.get("/directoryRoles").json()["value"][0]
    r = g.get(f"/directoryRoles(roleTemplateId='{role['roleTemplateId']}')")
    assert r.status_code == 200 and r.json()["id"] == role["id"]
    assert g.get(f"/directoryRoles(roleTemplateId='{role['roleTemplateId']}')/members").status_code == 200
    r = g.get(f"/applications(appId='{t['client_id']}')")
    assert r.status_code == 200 and r.json()["id"] == t["app_object_id"]
    assert g.get(f"/applications(appId='{uuid.uuid4()}')").status_code == 404


def test_directory_role_members_include_groups_and_service_principals_directoryrole_list_members(sb, graph):
    """api/directoryrole-list-members.md returns directoryObject members: users, groups, service principals."""
    g = graph(sb, "northwind")
    role = g.get("/directoryRoles").json()["value"][0]
    sb.admin("POST", f"tenants/northwind/directoryRoles/{role['id']}/members", json={"type": "servicePrincipal"})
    sb.admin("POST", f"tenants/northwind/directoryRoles/{role['id']}/members", json={"type": "group"})
    types = {m["@odata.type"] for m in g.get(f"/directoryRoles/{role['id']}/members").json()["value"]}
    assert {"#microsoft.graph.servicePrincipal", "#microsoft.graph.group"} <= types


# ---- filter rules ------------------------------------------------------------------------------------------
def test_properties_that_need_advanced_queries_even_for_eq_filter_directory_objects(sb, graph):
    """includes/filter-directory-objects.md marks eq on officeLocation, companyName, mobilePhone, postalCode,
    preferredLanguage, employeeType ... as "Advanced" (ConsistencyLevel: eventual and $count)."""
    g = graph(sb, "contoso")
    for flt in ("officeLocation eq 'London'", "companyName eq 'Contoso'", "mobilePhone eq '+1'"):
        err(g.get("/users", params={"$filter": flt}), 400, "Request_UnsupportedQuery")
        assert g.get("/users", params={"$filter": flt, "$count": "true"}, headers=EVENTUAL).status_code == 200
    assert g.get("/users", params={"$filter": "department eq 'Sales'"}).status_code == 200


def test_endswith_in_and_eq_limits_aad_advanced_queries(sb, graph):
    """concepts/aad-advanced-queries.md: endsWith only on mail, otherMails, userPrincipalName, proxyAddresses;
    `in` takes at most 15 values; string literals of a directory filter at most 120 characters."""
    g = graph(sb, "contoso")
    err(g.get("/users", params={"$filter": "endswith(displayName,'a')", "$count": "true"}, headers=EVENTUAL), 400)
    ok = g.get("/users", params={"$filter": "endswith(mail,'.com')", "$count": "true"}, headers=EVENTUAL)
    assert ok.status_code == 200
    vals = ",".join(f"'{i}'" for i in range(16))
    err(g.get("/users", params={"$filter": f"department in ({vals})"}), 400)
    assert g.get("/users", params={"$filter": f"department in ({vals[:vals.rindex(',')]})"}).status_code == 200
    err(g.get("/users", params={"$filter": f"displayName eq '{'a' * 121}'"}), 400)
    assert g.get("/users", params={"$filter": f"displayName eq '{'a' * 120}'"}).status_code == 200


def test_count_on_the_first_page_only_and_no_expand_with_advanced_queries(sb, graph):
    """concepts/paging.md: @odata.count comes with the first page; concepts/aad-advanced-queries.md: $expand
    is not supported with advanced queries; query-parameters: no $select nested in $expand on directory
    objects (docs/sandbox.md)."""
    g = graph(sb, "contoso")
    first = g.get("/users?$count=true&$top=50", headers=EVENTUAL).json()
    assert first["@odata.count"] > 50
    second = g.get(first["@odata.nextLink"], headers=EVENTUAL).json()
    assert "@odata.count" not in second
    err(g.get("/users?$count=true&$expand=manager", headers=EVENTUAL), 400, "Request_UnsupportedQuery")
    err(g.get("/users?$expand=manager($select=id)"), 400)


def test_batch_ids_are_unique_without_case_json_batching(sb, graph):
    """concepts/json-batching.md: the id of each request "must be unique within the batch"."""
    g = graph(sb, "contoso")
    r = g.post("/$batch", json={"requests": [{"id": "a", "method": "GET", "url": "/users?$top=1"},
                                             {"id": "A", "method": "GET", "url": "/users?$top=1"}]})
    err(r, 400)


def test_organization_needs_organization_read_all_organization_get(sb, graph):
    """api/organization-get.md: Application "Organization.Read.All" (least privileged), higher
    "Directory.Read.All, Organization.ReadWrite.All, Directory.ReadWrite.All"."""
    perms = sb.tenant("northwind")["permissions"]
    try:
        sb.admin("PUT", "tenants/northwind/permissions", json={"permissions": ["User.Read.All"]})
        err(graph(sb, "northwind").get("/organization"), 403, "Authorization_RequestDenied")
        sb.admin("PUT", "tenants/northwind/permissions", json={"permissions": ["Organization.Read.All"]})
        r = graph(sb, "northwind").get("/organization?$select=id,verifiedDomains")
        assert r.status_code == 200 and r.json()["value"][0]["verifiedDomains"]
    finally:
        sb.admin("PUT", "tenants/northwind/permissions", json={"permissions": perms})


# ---- replication lag ------------------------------------------------------------------------------------
def test_replication_lag_hides_a_new_user_user_list(make_sandbox, graph):
    """api/user-list.md: "This request might have replication delays for users that were recently created,
    updated, or deleted." With `--faults lag_ms=N` a new user is invisible to GET, list and PATCH for a while."""
    sb = make_sandbox(seed="demo", faults="lag_ms=1500", fault_seed=3)
    g = graph(sb, "northwind")
    made = new_user(g, "northwind.onmicrosoft.com")
    assert g.get(f"/users/{made['id']}").status_code == 404
    assert g.patch(f"/users/{made['id']}", json={"jobTitle": "x"}).status_code == 404
    flt = {"$filter": f"id eq '{made['id']}'"}
    assert g.get("/users", params=flt).json()["value"] == []
    deadline = time.monotonic() + 5
    while g.get(f"/users/{made['id']}").status_code == 404:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert [u["id"] for u in g.get("/users", params=flt).json()["value"]] == [made["id"]]
    assert g.patch(f"/users/{made['id']}", json={"jobTitle": "x"}).status_code == 204


def test_get_user_with_expand_manager_user_list_manager(sb, graph):
    """api/user-list-manager.md: GET /users/{id}?$expand=manager returns the user with its manager."""
    g = graph(sb, "northwind")
    raw = sb.admin("GET", "tenants/northwind/users")["value"]
    who = next(u for u in raw if u.get("_managerId"))
    body = g.get(f"/users/{who['id']}?$expand=manager&$select=id,displayName").json()
    assert body["manager"]["id"] == who["_managerId"] and body["manager"]["@odata.type"] == "#microsoft.graph.user"


def test_filter_on_an_on_premises_extension_attribute_resources_user(sb, graph):
    """resources/user.md: onPremisesExtensionAttributes "Supports $filter (eq, NOT, ge, le, in ...)", an
    advanced query (includes/filter-directory-objects.md); "the individual extension attributes are neither
    selectable" on their own."""
    g = graph(sb, "northwind")
    uid = new_user(g, "northwind.onmicrosoft.com")["id"]
    tag = uuid.uuid4().hex[:10]
    assert g.patch(f"/users/{uid}", json={"onPremisesExtensionAttributes": {"extensionAttribute7": tag}}).status_code == 204
    flt = {"$filter": f"onPremisesExtensionAttributes/extensionAttribute7 eq '{tag}'", "$count": "true"}
    err(g.get("/users", params={"$filter": flt["$filter"]}), 400, "Request_UnsupportedQuery")
    assert [u["id"] for u in g.get("/users", params=flt, headers=EVENTUAL).json()["value"]] == [uid]
    err(g.get("/users?$select=onPremisesExtensionAttributes/extensionAttribute7"), 400)
