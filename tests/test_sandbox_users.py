"""Graph v1.0 users over real HTTPS: paging, $select, $filter, $count, CRUD, manager, error bodies."""

from __future__ import annotations

import urllib.parse
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EVENTUAL = {"ConsistencyLevel": "eventual"}


def assert_graph_error(r, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert isinstance(err["message"], str) and err["message"]
    assert set(err["innerError"]) == {"date", "request-id", "client-request-id"}
    assert r.headers["request-id"]
    if code:
        assert err["code"] == code, err
    assert "Traceback" not in r.text
    return err


@pytest.fixture(scope="module")
def contoso_raw(sandbox):
    return sandbox.admin("GET", "tenants/contoso/users")["value"]


def new_user_body(domain: str, **extra) -> dict:
    nick = "t" + uuid.uuid4().hex[:10]
    return {"accountEnabled": True, "displayName": f"Test {nick}", "mailNickname": nick,
            "userPrincipalName": f"{nick}@{domain}", "passwordProfile": {"password": "S3cret!pw",
                                                                         "forceChangePasswordNextSignIn": True},
            **extra}


def test_paging_with_top_999_returns_every_user_once(sandbox, graph, contoso_raw):
    g = graph(sandbox, "contoso")
    pages, url, ids = 0, "/users?$top=999&$select=id,displayName", []
    while url:
        r = g.get(url)
        assert r.status_code == 200
        body = r.json()
        assert len(body["value"]) <= 999
        ids += [u["id"] for u in body["value"]]
        url = body.get("@odata.nextLink")
        pages += 1
    assert len(ids) == len(set(ids)) == len(contoso_raw) >= 2000
    assert pages == -(-len(ids) // 999)


def test_default_page_is_100_and_nextlink_is_opaque(sandbox, graph):
    g = graph(sandbox, "contoso")
    body = g.get("/users").json()
    assert len(body["value"]) == 100
    link = body["@odata.nextLink"]
    assert link.startswith(sandbox.info["graph_url"] + "/users?")
    assert "displayName" not in link and "$top" not in link
    # the default projection of Graph v1.0
    assert set(body["value"][0]) == {"businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
                                     "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id"}


def test_tampered_skiptoken_is_a_graph_error(sandbox, graph):
    g = graph(sandbox, "contoso")
    link = g.get("/users?$top=5").json()["@odata.nextLink"]
    assert_graph_error(g.get(link[:-3] + "AAA"), 400)


@pytest.mark.parametrize("top", ["0", "1000", "abc", "-1"])
def test_top_out_of_range_is_400(sandbox, graph, top):
    assert_graph_error(graph(sandbox, "contoso").get(f"/users?$top={top}"), 400)


def test_select_returns_only_selected_properties(sandbox, graph):
    body = graph(sandbox, "contoso").get("/users?$top=3&$select=displayName,accountEnabled,employeeId").json()
    assert body["@odata.context"].endswith("#users(displayName,accountEnabled,employeeId)")
    for u in body["value"]:
        assert set(u) == {"displayName", "accountEnabled", "employeeId"}


def test_unknown_select_property_is_a_graph_error(sandbox, graph):
    err = assert_graph_error(graph(sandbox, "contoso").get("/users?$select=displayName,favouriteColour"), 400)
    assert "favouriteColour" in err["message"]


@pytest.mark.parametrize("flt", ["displayName eq", "startswith(displayName 'a')", "(accountEnabled eq true",
                                 "displayName eq 'unterminated", "foo eq 'x'", "accountEnabled eq true and"])
def test_malformed_filter_is_a_graph_error(sandbox, graph, flt):
    r = graph(sandbox, "contoso").get("/users", params={"$filter": flt}, headers=EVENTUAL)
    assert_graph_error(r, 400)


def matches(g, flt: str, advanced: bool = False) -> list[dict]:
    params = {"$filter": flt, "$select": "id,displayName,mail,accountEnabled,userType,department,creationType",
              "$top": "999"}
    headers = {}
    if advanced:
        params["$count"] = "true"
        headers = EVENTUAL
    out, url = [], "/users?" + urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
    while url:
        r = g.get(url, headers=headers)
        assert r.status_code == 200, r.text
        out += r.json()["value"]
        url = r.json().get("@odata.nextLink")
    return out


def test_filters_agree_with_the_raw_state(sandbox, graph, contoso_raw):
    g = graph(sandbox, "contoso")
    raw = contoso_raw
    some = next(u for u in raw if u.get("mail") and u.get("department"))
    dept = some["department"]

    def ids(users):
        return sorted(u["id"] for u in users)

    assert ids(matches(g, f"department eq '{dept}'")) == ids(
        u for u in raw if (u.get("department") or "").lower() == dept.lower())
    assert ids(matches(g, "accountEnabled eq false")) == ids(u for u in raw if u.get("accountEnabled") is False)
    assert ids(matches(g, "userType eq 'Guest'")) == ids(u for u in raw if u.get("userType") == "Guest")
    prefix = some["displayName"][:2]
    assert ids(matches(g, f"startswith(displayName,'{prefix}')")) == ids(
        u for u in raw if (u.get("displayName") or "").lower().startswith(prefix.lower()))
    assert ids(matches(g, f"mail in ('{some['mail']}', 'nobody@example.org')")) == [some["id"]]
    # advanced queries: ne, not, endswith, null
    assert ids(matches(g, "mail eq null", advanced=True)) == ids(u for u in raw if u.get("mail") is None)
    assert ids(matches(g, "mail ne null and accountEnabled eq true", advanced=True)) == ids(
        u for u in raw if u.get("mail") is not None and u.get("accountEnabled") is True)
    assert ids(matches(g, "not(userType eq 'Member')", advanced=True)) == ids(
        u for u in raw if u.get("userType") != "Member")
    assert ids(matches(g, "endswith(mail,'@contoso.onmicrosoft.com') or userType eq 'Guest'", advanced=True)) == ids(
        u for u in raw if (u.get("mail") or "").lower().endswith("@contoso.onmicrosoft.com")
        or u.get("userType") == "Guest")


def test_filter_with_quote_escaping_finds_apostrophe_names(sandbox, graph, contoso_raw):
    who = next((u for u in contoso_raw if "'" in (u.get("surname") or "")), None)
    if who is None:
        pytest.skip("seed has no apostrophe surname")
    lit = who["surname"].replace("'", "''")
    found = matches(graph(sandbox, "contoso"), f"surname eq '{lit}'")
    assert who["id"] in {u["id"] for u in found}


def test_advanced_filters_need_consistency_level_and_count(sandbox, graph):
    g = graph(sandbox, "contoso")
    for flt in ("mail ne null", "endswith(mail,'.com')", "not(accountEnabled eq true)"):
        assert_graph_error(g.get("/users", params={"$filter": flt}), 400, "Request_UnsupportedQuery")
        assert_graph_error(g.get("/users", params={"$filter": flt, "$count": "true"}), 400)


def test_count_without_consistency_level_is_ignored_aad_advanced_queries(sandbox, graph):
    """concepts/aad-advanced-queries.md: $count is an advanced query parameter that works only with
    ConsistencyLevel: eventual; Graph ignores $count=true without it (200, no @odata.count), it does not
    fail the request."""
    g = graph(sandbox, "contoso")
    r = g.get("/users?$count=true&$top=5")
    assert r.status_code == 200 and "@odata.count" not in r.json()


def test_count_equals_the_number_of_matches(sandbox, graph, contoso_raw):
    g = graph(sandbox, "contoso")
    body = g.get("/users?$count=true&$top=1", headers=EVENTUAL).json()
    assert body["@odata.count"] == len(contoso_raw)
    body = g.get("/users", params={"$count": "true", "$filter": "accountEnabled eq false"}, headers=EVENTUAL).json()
    assert body["@odata.count"] == sum(1 for u in contoso_raw if u.get("accountEnabled") is False)


def test_get_by_id_and_by_upn(sandbox, graph, contoso_raw):
    g = graph(sandbox, "contoso")
    u = contoso_raw[7]
    by_id = g.get(f"/users/{u['id']}?$select=id,userPrincipalName,department").json()
    by_upn = g.get(f"/users/{urllib.parse.quote(u['userPrincipalName'])}?$select=id,userPrincipalName,department")
    assert by_upn.json()["id"] == by_id["id"] == u["id"]
    assert by_id["@odata.context"].endswith("$metadata#users/$entity")
    assert_graph_error(g.get(f"/users/{uuid.uuid4()}"), 404, "Request_ResourceNotFound")


def test_create_patch_delete_restore_lifecycle(sandbox, graph):
    g = graph(sandbox, "northwind")
    body = new_user_body("northwind.onmicrosoft.com", department="Legal", city="Zürich")
    r = g.post("/users", json=body)
    assert r.status_code == 201, r.text
    created = r.json()
    assert "passwordProfile" not in created and created["userPrincipalName"] == body["userPrincipalName"]
    uid = created["id"]
    assert g.patch(f"/users/{uid}", json={"jobTitle": "Counsel", "accountEnabled": False}).status_code == 204
    got = g.get(f"/users/{uid}?$select=jobTitle,accountEnabled,city,department,createdDateTime").json()
    assert (got["jobTitle"], got["accountEnabled"], got["city"]) == ("Counsel", False, "Zürich")
    assert got["createdDateTime"].endswith("Z")
    # duplicate UPN
    assert_graph_error(g.post("/users", json={**new_user_body("northwind.onmicrosoft.com"),
                                              "userPrincipalName": body["userPrincipalName"]}), 400)
    # soft delete -> gone from users, present in deletedItems -> restore
    assert g.delete(f"/users/{uid}").status_code == 204
    assert g.get(f"/users/{uid}").status_code == 404
    deleted = g.all_pages("/directory/deletedItems/microsoft.graph.user?$top=999")
    hit = [d for d in deleted if d["id"] == uid]
    assert hit and hit[0]["@odata.type"] == "#microsoft.graph.user" and hit[0]["deletedDateTime"]
    r = g.post(f"/directory/deletedItems/{uid}/restore")
    assert r.status_code == 200 and r.json()["id"] == uid
    assert g.get(f"/users/{uid}?$select=jobTitle").json()["jobTitle"] == "Counsel"
    assert uid not in {d["id"] for d in g.all_pages("/directory/deletedItems/microsoft.graph.user")}


def test_bad_write_bodies_get_graph_errors(sandbox, graph, contoso_raw):
    g = graph(sandbox, "contoso")
    uid = contoso_raw[11]["id"]
    err = assert_graph_error(g.patch(f"/users/{uid}", json={"favouriteColour": "blue"}), 400, "Request_BadRequest")
    assert "favouriteColour" in err["message"]
    assert_graph_error(g.patch(f"/users/{uid}", json={"accountEnabled": "yes"}), 400)
    assert_graph_error(g.patch(f"/users/{uid}", json={"creationType": "Invitation"}), 400)
    assert_graph_error(g.patch(f"/users/{uid}", data=b"{not json", headers={"Content-Type": "application/json"}),
                       400, "BadRequest")
    assert_graph_error(g.post("/users", data=b"\xff\xfe", headers={"Content-Type": "application/json"}), 400)
    assert_graph_error(g.post("/users", json={"displayName": "x"}), 400)
    assert_graph_error(g.post("/users", json=new_user_body("elsewhere.example")), 400)
    assert_graph_error(g.get("/nonsense"), 400)
    assert_graph_error(g.request("PUT", f"/users/{uid}", json={}), 405)


def test_manager_get_and_put_ref(sandbox, graph):
    g = graph(sandbox, "northwind")
    a = g.post("/users", json=new_user_body("northwind.onmicrosoft.com")).json()
    b = g.post("/users", json=new_user_body("northwind.onmicrosoft.com")).json()
    assert_graph_error(g.get(f"/users/{a['id']}/manager"), 404, "Request_ResourceNotFound")
    ref = {"@odata.id": f"https://graph.microsoft.com/v1.0/users/{b['id']}"}
    assert g.put(f"/users/{a['id']}/manager/$ref", json=ref).status_code == 204
    m = g.get(f"/users/{a['id']}/manager").json()
    assert m["id"] == b["id"] and m["@odata.type"] == "#microsoft.graph.user"
    assert_graph_error(g.put(f"/users/{a['id']}/manager/$ref", json={"@odata.id": f"users/{uuid.uuid4()}"}), 404)
    assert_graph_error(g.put(f"/users/{a['id']}/manager/$ref", json={"@odata.id": f"users/{a['id']}"}), 400)
    assert g.delete(f"/users/{a['id']}/manager/$ref").status_code == 204
    assert g.get(f"/users/{a['id']}/manager").status_code == 404


def test_seeded_managers_are_visible(sandbox, graph, contoso_raw):
    g = graph(sandbox, "contoso")
    u = next(x for x in contoso_raw if x.get("_managerId"))
    assert g.get(f"/users/{u['id']}/manager?$select=id").json()["id"] == u["_managerId"]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(top=st.integers(1, 999), enabled=st.booleans())
def test_any_page_size_lists_each_matching_user_exactly_once(sandbox, graph, top, enabled):
    g = graph(sandbox, "northwind")
    raw = sandbox.admin("GET", "tenants/northwind/users")["value"]
    got = g.all_pages(f"/users?$top={top}&$select=id&$filter=accountEnabled eq {str(enabled).lower()}")
    ids = [u["id"] for u in got]
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(u["id"] for u in raw if u.get("accountEnabled") is enabled)


def test_count_segment_and_unsupported_options(sandbox, graph, contoso_raw):
    g = graph(sandbox, "contoso")
    r = g.get("/users/$count", headers=EVENTUAL)
    assert r.status_code == 200 and int(r.text) == len(contoso_raw)
    r = g.get("/users/$count", params={"$filter": "accountEnabled eq false"}, headers=EVENTUAL)
    assert int(r.text) == sum(1 for u in contoso_raw if u.get("accountEnabled") is False)
    assert_graph_error(g.get("/users/$count"), 400)
    for opt in ("$expand=memberOf", "$skip=5"):
        err = assert_graph_error(g.get(f"/users?{opt}"), 400, "Request_UnsupportedQuery")
        assert "sandbox" in err["message"]


def test_orderby_and_search_user_list_and_search_query_parameter(sandbox, graph, contoso_raw):
    """api/user-list.md: displayName and userPrincipalName support $orderby; concepts/search-query-parameter.md:
    "$search ... on directory objects ... requires the ConsistencyLevel header set to eventual"."""
    g = graph(sandbox, "contoso")
    names = [u["displayName"] for u in g.get("/users?$orderby=displayName&$top=50&$select=displayName").json()["value"]]
    assert names == sorted(names, key=str.lower)
    desc = g.get("/users?$orderby=userPrincipalName desc&$top=5&$select=userPrincipalName").json()["value"]
    assert [u["userPrincipalName"] for u in desc] == sorted((u["userPrincipalName"] for u in contoso_raw),
                                                            key=str.lower, reverse=True)[:5]
    assert_graph_error(g.get("/users?$orderby=city"), 400, "Request_UnsupportedQuery")
    assert_graph_error(g.get('/users?$search="displayName:ava"'), 400, "Request_UnsupportedQuery")
    who = contoso_raw[3]
    word = who["displayName"].split()[0]
    hits = g.get(f'/users?$search="displayName:{word}"&$select=id,displayName', headers=EVENTUAL).json()["value"]
    assert who["id"] in {u["id"] for u in hits}
    assert all(word.lower() in u["displayName"].lower() for u in hits)
