"""$batch semantics and the per-request throttling/fault hooks, over real HTTPS."""

from __future__ import annotations

import time
import uuid

import pytest
import requests


def user_ids(sb, tenant: str, n: int) -> list[str]:
    return [u["id"] for u in sb.admin("GET", f"tenants/{tenant}/users")["value"][:n]]


def batch(g, requests_: list[dict]):
    return g.post("/$batch", json={"requests": requests_})


def test_batch_runs_requests_honours_depends_on_and_424(sandbox, graph):
    g = graph(sandbox, "contoso")
    uid = user_ids(sandbox, "contoso", 3)[2]
    r = batch(g, [
        {"id": "1", "method": "GET", "url": f"/users/{uuid.uuid4()}"},
        {"id": "2", "method": "PATCH", "url": f"/users/{uid}", "dependsOn": ["1"],
         "headers": {"Content-Type": "application/json"}, "body": {"jobTitle": "never"}},
        {"id": "3", "method": "PATCH", "url": f"/users/{uid}", "headers": {"Content-Type": "application/json"},
         "body": {"officeLocation": "B42"}},
        {"id": "4", "method": "GET", "url": f"/users/{uid}?$select=officeLocation,jobTitle", "dependsOn": ["3"]},
        {"id": "5", "method": "GET", "url": "users?$top=2&$select=id"},
    ])
    assert r.status_code == 200
    res = {x["id"]: x for x in r.json()["responses"]}
    assert set(res) == {"1", "2", "3", "4", "5"}
    assert res["1"]["status"] == 404 and res["1"]["body"]["error"]["code"] == "Request_ResourceNotFound"
    assert res["2"]["status"] == 424
    assert res["3"]["status"] == 204 and "body" not in res["3"]
    assert res["4"]["status"] == 200 and res["4"]["body"]["officeLocation"] == "B42"
    assert res["4"]["body"]["jobTitle"] != "never"
    assert len(res["5"]["body"]["value"]) == 2
    assert all("x-ms-resource-unit" in x["headers"] for x in (res["1"], res["3"], res["4"]))


@pytest.mark.parametrize("payload", [
    {"requests": [{"id": str(i), "method": "GET", "url": "/users?$top=1"} for i in range(21)]},
    {"requests": [{"id": "1", "method": "GET", "url": "/users"}, {"id": "1", "method": "GET", "url": "/users"}]},
    {"requests": []},
    {"requests": [{"id": "1", "method": "GET"}]},
    {"requests": [{"id": "1", "method": "FETCH", "url": "/users"}]},
    {"requests": [{"id": "1", "method": "GET", "url": "/users", "dependsOn": ["9"]}]},
    {"requests": [{"id": "1", "method": "GET", "url": "/users", "dependsOn": ["2"]},
                  {"id": "2", "method": "GET", "url": "/users", "dependsOn": ["1"]}]},
    {"requests": [{"id": "1", "method": "PATCH", "url": "/users/x", "body": {"city": "Oslo"}}]},
    {"requests": [{"id": "1", "method": "GET", "url": "https://graph.microsoft.com/v1.0/users"}]},
    {"nothing": 1},
    [1, 2],
])
def test_malformed_or_oversized_batches_get_400(sandbox, graph, payload):
    r = graph(sandbox, "contoso").post("/$batch", json=payload)
    assert r.status_code == 400 and r.json()["error"]["code"] == "BadRequest"
    assert r.json()["error"]["innerError"]["request-id"]


def test_non_json_batch_gets_400(sandbox, graph):
    r = graph(sandbox, "contoso").post("/$batch", data=b"<xml/>", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["error"]["message"]


def test_documented_costs_in_resource_unit_header(make_sandbox, graph):
    sb = make_sandbox(seed="demo", throttle="documented")
    g = graph(sb, "contoso")
    assert g.get("/users").headers["x-ms-resource-unit"] == "2"
    assert g.get("/users?$select=id").headers["x-ms-resource-unit"] == "1"
    uid = user_ids(sb, "contoso", 1)[0]
    assert g.get(f"/users/{uid}").headers["x-ms-resource-unit"] == "1"


def test_injected_faults_per_kind_and_in_batches(make_sandbox, graph):
    sb = make_sandbox(seed="demo", faults="kind=write,429=1")
    g = graph(sb, "contoso")
    uid = user_ids(sb, "contoso", 1)[0]
    assert g.get("/users?$top=1").status_code == 200
    r = g.patch(f"/users/{uid}", json={"jobTitle": "x"})
    assert r.status_code == 429 and r.headers["Retry-After"] and r.json()["error"]["code"] == "TooManyRequests"
    r = batch(g, [{"id": "a", "method": "GET", "url": f"/users/{uid}"},
                  {"id": "b", "method": "PATCH", "url": f"/users/{uid}", "body": {"jobTitle": "y"},
                   "headers": {"Content-Type": "application/json"}},
                  {"id": "c", "method": "GET", "url": f"/users/{uid}", "dependsOn": ["b"]}])
    assert r.status_code == 200
    res = {x["id"]: x for x in r.json()["responses"]}
    assert res["a"]["status"] == 200 and res["b"]["status"] == 429 and res["c"]["status"] == 424
    assert res["b"]["headers"]["Retry-After"]
    # change faults at runtime: 5xx on reads of fabrikam only
    sb.admin("PUT", "faults", json={"spec": "tenant=fabrikam,kind=read,503=1", "seed": 7})
    assert g.get("/users?$top=1").status_code == 200
    r = graph(sb, "fabrikam").get("/users?$top=1")
    assert r.status_code == 503 and r.json()["error"]["innerError"]["request-id"]
    sb.admin("PUT", "faults", json={"spec": None})
    assert graph(sb, "fabrikam").get("/users?$top=1").status_code == 200


def test_reset_drops_the_connection_after_the_write(make_sandbox, graph):
    sb = make_sandbox(seed="demo", faults="tenant=northwind,kind=write,reset=1")
    g = graph(sb, "northwind")
    nick = "r" + uuid.uuid4().hex[:8]
    with pytest.raises(requests.exceptions.ConnectionError):
        g.post("/users", json={"accountEnabled": True, "displayName": nick, "mailNickname": nick,
                               "userPrincipalName": f"{nick}@northwind.onmicrosoft.com",
                               "passwordProfile": {"password": "x"}})
    # the write happened, only the answer was lost: an idempotent client must look before retrying
    r = g.get("/users", params={"$filter": f"userPrincipalName eq '{nick}@northwind.onmicrosoft.com'"})
    assert r.status_code == 200 and len(r.json()["value"]) == 1
    assert graph(sb, "contoso").get("/users?$top=1").status_code == 200


def test_latency_fault_delays_answers(make_sandbox, graph):
    sb = make_sandbox(seed="demo", faults="tenant=contoso,latency_ms=300")
    g = graph(sb, "contoso")
    g.get("/users?$top=1")
    start = time.perf_counter()
    assert g.get("/users?$top=1").status_code == 200
    assert time.perf_counter() - start >= 0.3


def test_reset_inside_a_batch_drops_the_whole_answer_after_running_it(make_sandbox, graph):
    sb = make_sandbox(seed="demo", faults="tenant=fabrikam,kind=write,reset=1")
    g = graph(sb, "fabrikam")
    uid = user_ids(sb, "fabrikam", 2)[1]
    with pytest.raises(requests.exceptions.ConnectionError):
        batch(g, [{"id": "1", "method": "PATCH", "url": f"/users/{uid}", "body": {"jobTitle": "lost answer"},
                   "headers": {"Content-Type": "application/json"}}])
    assert g.get(f"/users/{uid}?$select=jobTitle").json()["jobTitle"] == "lost answer"
