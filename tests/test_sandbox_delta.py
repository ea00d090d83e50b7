"""users/delta: initial pages -> deltaLink, later rounds only changes, @removed, latest, resync errors."""

from __future__ import annotations

import uuid

import pytest


def delta_round(g, url: str, headers: dict | None = None) -> tuple[list[dict], str, int]:
    items, pages = [], 0
    while True:
        r = g.get(url, headers=headers or {})
        assert r.status_code == 200, r.text
        body = r.json()
        pages += 1
        items += body["value"]
        assert not ("@odata.nextLink" in body and "@odata.deltaLink" in body)
        if "@odata.deltaLink" in body:
            return items, body["@odata.deltaLink"], pages
        url = body["@odata.nextLink"]


@pytest.fixture
def sb(make_sandbox):
    return make_sandbox(seed="demo")


def new_user(g, domain: str) -> dict:
    nick = "d" + uuid.uuid4().hex[:10]
    r = g.post("/users", json={"accountEnabled": True, "displayName": nick, "mailNickname": nick,
                               "userPrincipalName": f"{nick}@{domain}", "passwordProfile": {"password": "x"}})
    assert r.status_code == 201
    return r.json()


def test_initial_round_pages_then_changes_only(sb, graph):
    g = graph(sb, "northwind")
    raw = sb.admin("GET", "tenants/northwind/users")["value"]
    items, link, pages = delta_round(g, "/users/delta?$select=displayName,jobTitle",
                                     headers={"Prefer": "odata.maxpagesize=100"})
    assert pages >= 3 and sorted(i["id"] for i in items) == sorted(u["id"] for u in raw)
    # api/user-delta.md: "If the property has never been set before it will not be included in the response"
    assert all(set(i) <= {"id", "displayName", "jobTitle"} and "displayName" in i for i in items)
    assert all(i[k] is not None for i in items for k in i)
    # nothing changed: an empty round with a fresh deltaLink
    again, link, _ = delta_round(g, link)
    assert again == []
    # update one, delete one, create one
    upd, gone = raw[0]["id"], raw[1]["id"]
    assert g.patch(f"/users/{upd}", json={"jobTitle": "Chief Delta Officer"}).status_code == 204
    assert g.delete(f"/users/{gone}").status_code == 204
    made = new_user(g, "northwind.onmicrosoft.com")
    changes, link, _ = delta_round(g, link)
    by_id = {c["id"]: c for c in changes}
    assert set(by_id) == {upd, gone, made["id"]}
    # api/user-delta.md: "Updated instances are represented by their id with at least the updated properties"
    assert by_id[upd] == {"id": upd, "jobTitle": "Chief Delta Officer"}
    assert by_id[gone]["@removed"] == {"reason": "changed"}
    # a restore shows the user again as a normal item
    assert g.post(f"/directory/deletedItems/{gone}/restore").status_code == 200
    changes, link, _ = delta_round(g, link)
    assert [c["id"] for c in changes] == [gone] and "@removed" not in changes[0]


def test_deltatoken_latest_skips_current_state(sb, graph):
    g = graph(sb, "fabrikam")
    r = g.get("/users/delta?$deltatoken=latest&$select=displayName")
    body = r.json()
    assert r.status_code == 200 and body["value"] == [] and "@odata.deltaLink" in body
    made = new_user(g, "fabrikam.onmicrosoft.com")
    changes, _, _ = delta_round(g, body["@odata.deltaLink"])
    assert [c["id"] for c in changes] == [made["id"]]


def test_a_round_from_the_latest_link_holds_only_a_user_changed_after_it(sb, graph):
    """concepts/delta-query-overview.md: "Append `$deltatoken=latest` to the `delta` function and the response
    contains a `@odata.deltaLink` and no resource data." (api/user-delta.md): a round from that link holds what
    changed after it, here one existing user's edit, and no other user. The change probe's target side reads
    its rounds from such a link (xts_pipeline/probe.py)."""
    g = graph(sb, "fabrikam")
    body = g.get("/users/delta?$deltatoken=latest&$select=displayName,jobTitle").json()
    assert body["value"] == [] and "@odata.deltaLink" in body and "@odata.nextLink" not in body
    users = sb.admin("GET", "tenants/fabrikam/users")["value"]
    edited = next(u for u in users if u.get("jobTitle") != "Latest Probe")
    assert g.patch(f"/users/{edited['id']}", json={"jobTitle": "Latest Probe"}).status_code == 204
    changes, link, _ = delta_round(g, body["@odata.deltaLink"])
    # api/user-delta.md: "Updated instances are represented by their id with at least the updated properties"
    assert changes == [{"id": edited["id"], "jobTitle": "Latest Probe"}]
    assert delta_round(g, link)[0] == []  # and the next round, nothing more


def test_purged_users_come_back_as_removed_deleted(sb, graph):
    g = graph(sb, "fabrikam")
    victim = new_user(g, "fabrikam.onmicrosoft.com")
    assert g.delete(f"/users/{victim['id']}").status_code == 204
    sb.admin("POST", "clock/advance", json={"seconds": 29 * 86400})
    g = graph(sb, "fabrikam")  # the old token has expired on the sandbox clock
    _, link, _ = delta_round(g, "/users/delta?$deltatoken=latest")
    sb.admin("POST", "clock/advance", json={"seconds": 2 * 86400})  # past 30 days: purged
    g = graph(sb, "fabrikam")
    changes, _, _ = delta_round(g, link)
    assert {"id": victim["id"], "@removed": {"reason": "deleted"}} in changes
    assert g.post(f"/directory/deletedItems/{victim['id']}/restore").status_code == 404


def test_expired_and_unknown_tokens_get_the_resync_error(sb, graph):
    g = graph(sb, "northwind")
    _, link, _ = delta_round(g, "/users/delta?$deltatoken=latest")
    bogus = link.split("$deltatoken=")[0] + "$deltatoken=bm90LWEtdG9rZW4"
    r = g.get(bogus)
    assert r.status_code == 400 and r.json()["error"]["code"] == "syncStateNotFound"
    sb.admin("POST", "clock/advance", json={"seconds": 7 * 86400 + 60})
    g = graph(sb, "northwind")
    r = g.get(link)
    assert r.status_code == 400 and r.json()["error"]["code"] == "syncStateNotFound"
    assert "synchronized again" in r.json()["error"]["message"]


def test_a_token_of_one_tenant_is_unknown_to_another(sb, graph):
    _, link, _ = delta_round(graph(sb, "northwind"), "/users/delta?$deltatoken=latest")
    r = graph(sb, "fabrikam").get(link)
    assert r.status_code == 400 and r.json()["error"]["code"] == "syncStateNotFound"


def test_manager_on_users_list_by_plain_expand_and_on_delta_by_select_annotation_delta_query_overview(sb, graph):
    """concepts/delta-query-overview.md: on users/delta "$expand isn't supported", "$select also supports
    manager and members navigation properties", and "Relationships on users and groups are represented as
    annotations ... propertyName@delta". The users list takes plain $expand=manager; a $select nested in
    the expand of a directory object is refused (docs/sandbox.md)."""
    g = graph(sb, "northwind")
    raw = {u["id"]: u for u in sb.admin("GET", "tenants/northwind/users")["value"]}
    want = {uid: u.get("_managerId") for uid, u in raw.items()}
    assert any(want.values()) and not all(want.values())

    listed, url = [], "/users?$select=id,displayName&$top=100&$expand=manager"
    while url:
        r = g.get(url)
        assert r.status_code == 200, r.text
        listed += r.json()["value"]
        url = r.json().get("@odata.nextLink")
    for i in listed:
        assert "manager" not in i or (i["manager"]["@odata.type"] == "#microsoft.graph.user"
                                      and i["manager"]["displayName"] == raw[i["manager"]["id"]]["displayName"])
    assert {i["id"]: (i.get("manager") or {}).get("id") for i in listed} == want
    assert g.get("/users?$expand=manager($select=id)").status_code == 400
    r = g.get("/users/delta?$select=displayName&$expand=manager")
    assert r.status_code == 400 and r.json()["error"]["code"] == "Request_UnsupportedQuery"

    def delta_managers(items: list[dict]) -> dict[str, str | None]:
        out = {}
        for i in items:
            if "manager@delta" in i:
                live = [m["id"] for m in i["manager@delta"] if "@removed" not in m]
                out[i["id"]] = live[0] if live else None
        return out

    items, link, _ = delta_round(g, "/users/delta?$select=displayName,manager",
                                 headers={"Prefer": "odata.maxpagesize=100"})
    assert all("manager" not in i for i in items)
    assert delta_managers(items) == {k: v for k, v in want.items() if v}
    # a manager change: the next round names the user with only the annotation; a removal is @removed
    a, b = sorted(uid for uid, m in want.items() if m)[:2]
    assert g.put(f"/users/{a}/manager/$ref", json={"@odata.id": f"{sb.info['graph_url']}/users/{b}"}).status_code == 204
    assert g.delete(f"/users/{b}/manager/$ref").status_code == 204
    changes, _, _ = delta_round(g, link)
    assert delta_managers(changes) == {a: b, b: None}
    assert all(set(c) == {"id", "manager@delta"} for c in changes)
    removed = next(c for c in changes if c["id"] == b)["manager@delta"][0]
    assert removed == {"@odata.type": "#microsoft.graph.user", "id": want[b], "@removed": {"reason": "deleted"}}
    # only the manager expansion is served; anything else is refused rather than ignored
    r = g.get("/users?$expand=memberOf")
    assert r.status_code == 400 and r.json()["error"]["code"] == "Request_UnsupportedQuery"


def test_one_entity_several_times_in_order_user_delta(sb, graph):
    """api/user-delta.md: "A single entity can be contained multiple times in the response, if that entity
    was changed multiple times and under certain conditions." Each copy carries that change; the last wins."""
    g = graph(sb, "fabrikam")
    _, link, _ = delta_round(g, "/users/delta?$deltatoken=latest&$select=displayName,jobTitle,department")
    uid = sb.admin("GET", "tenants/fabrikam/users")["value"][5]["id"]
    assert g.patch(f"/users/{uid}", json={"jobTitle": "First"}).status_code == 204
    assert g.patch(f"/users/{uid}", json={"jobTitle": "Second", "department": "Ops"}).status_code == 204
    assert g.delete(f"/users/{uid}").status_code == 204
    assert g.post(f"/directory/deletedItems/{uid}/restore").status_code == 200
    changes, _, _ = delta_round(g, link)
    mine = [c for c in changes if c["id"] == uid]
    assert mine[0] == {"id": uid, "jobTitle": "First"}
    assert mine[1] == {"id": uid, "jobTitle": "Second", "department": "Ops"}
    assert mine[2] == {"id": uid, "@removed": {"reason": "changed"}}
    assert mine[3]["jobTitle"] == "Second" and "@removed" not in mine[3]


def test_delta_filter_by_id_user_delta(sb, graph):
    """api/user-delta.md / concepts/delta-query-overview.md: "Only $filter with id eq is supported" on
    users/delta, ORed for several objects."""
    g = graph(sb, "fabrikam")
    ids = [u["id"] for u in sb.admin("GET", "tenants/fabrikam/users")["value"][:3]]
    flt = " or ".join(f"id eq '{i}'" for i in ids[:2])
    items, link, _ = delta_round(g, f"/users/delta?$select=displayName&$filter={flt}")
    assert sorted(i["id"] for i in items) == sorted(ids[:2])
    for uid in ids:
        assert g.patch(f"/users/{uid}", json={"displayName": f"renamed {uid[:4]}"}).status_code == 204
    changes, _, _ = delta_round(g, link)
    assert sorted(c["id"] for c in changes) == sorted(ids[:2])
    r = g.get("/users/delta?$filter=displayName eq 'x'")
    assert r.status_code == 400 and r.json()["error"]["code"] == "Request_UnsupportedQuery"
