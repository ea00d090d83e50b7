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
    assert all(set(i) == {"id", "displayName", "jobTitle"} for i in items)
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
    assert by_id[upd]["jobTitle"] == "Chief Delta Officer" and set(by_id[upd]) == {"id", "displayName", "jobTitle"}
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


def test_expand_manager_on_users_list_and_delta(sb, graph):
    """$expand=manager($select=id): Graph's reference shape on list and delta pages, absent when none."""
    g = graph(sb, "northwind")
    raw = {u["id"]: u for u in sb.admin("GET", "tenants/northwind/users")["value"]}
    want = {uid: u.get("_managerId") for uid, u in raw.items()}
    assert any(want.values()) and not all(want.values())

    def managers(items: list[dict]) -> dict[str, str | None]:
        for i in items:
            assert "manager" not in i or i["manager"] == {"@odata.type": "#microsoft.graph.user",
                                                           "id": i["manager"]["id"]}
        return {i["id"]: (i.get("manager") or {}).get("id") for i in items}

    listed, url = [], "/users?$select=id,displayName&$top=100&$expand=manager($select=id)"
    while url:
        r = g.get(url)
        assert r.status_code == 200, r.text
        listed += r.json()["value"]
        url = r.json().get("@odata.nextLink")
    assert managers(listed) == want
    items, link, _ = delta_round(g, "/users/delta?$select=displayName&$expand=manager($select=id)",
                                 headers={"Prefer": "odata.maxpagesize=100"})
    assert managers(items) == want
    # a manager change shows in the next round, still expanded; a removal drops the key
    a, b = sorted(uid for uid, m in want.items() if m)[:2]
    assert g.put(f"/users/{a}/manager/$ref", json={"@odata.id": f"{sb.info['graph_url']}/users/{b}"}).status_code == 204
    assert g.delete(f"/users/{b}/manager/$ref").status_code == 204
    changes, _, _ = delta_round(g, link)
    assert managers(changes) == {a: b, b: None}
    # only the manager expansion is served; anything else is refused rather than ignored
    r = g.get("/users?$expand=memberOf")
    assert r.status_code == 400 and r.json()["error"]["code"] == "Request_UnsupportedQuery"
