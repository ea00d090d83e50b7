"""The sandbox's pure parts: documented throttling, seeded faults, and the tenant generator."""

from __future__ import annotations

import collections
import itertools
import math
import re
import threading
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xts_pipeline.sandbox.faults import Fault, FaultInjector, FaultSpec, FaultSpecError
from xts_pipeline.sandbox.seed import (
    ALL_PERMISSIONS,
    PartnerPolicy,
    SeedError,
    demo_seed,
    generate_tenant,
    load_seed_file,
)
from xts_pipeline.sandbox.throttle import ThrottleError, Throttler, app_tenant_ru_limit, request_cost

TENANT = "0785ef7c-2d7a-4542-b048-95bcab406e0b"  # ids from the doc's x-ms-throttle-scope example
APP = "9a3d526c-b3c1-4479-ba74-197b5c5751ae"


class FakeClock:
    """Sandbox seconds under the test's control (the throttler takes any zero-arg callable)."""

    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


# --- request costs: the documented table ------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        ("GET", "/v1.0/users", None, (2, 0)),  # GET users: 2
        ("GET", "/v1.0/users", "$select=id,displayName", (1, 0)),  # $select: -1
        ("GET", "/v1.0/users", {"$select": "id", "$top": "999"}, (1, 0)),
        ("GET", "/v1.0/users", {"$select": "id", "$top": "5"}, (1, 0)),  # never below 1
        ("GET", "/v1.0/users", {"$top": "10"}, (1, 0)),  # $top < 20: -1
        ("GET", "/v1.0/users", {"$expand": "manager"}, (3, 0)),  # $expand: +1
        ("GET", "/v1.0/users", {"select": "id"}, (1, 0)),  # v1.0 accepts options without `$`
        ("GET", "/v1.0/users/abc", None, (1, 0)),  # not in the table: 1
        ("GET", "/v1.0/users/delta", "$select=id", (1, 0)),
        ("GET", "/v1.0/groups/g1/members", None, (3, 0)),
        ("GET", "/v1.0/groups/g1/members", "%24top=10", (2, 0)),
        ("GET", "/v1.0/groups/g1/transitiveMembers", None, (5, 0)),
        ("GET", "/v1.0/users/u1/memberOf", None, (2, 0)),  # me/ costs apply to users/{id}/
        ("GET", "/v1.0/applications/a1/extensionProperties", None, (2, 0)),
        ("GET", "/v1.0/subscribedSkus", None, (3, 0)),
        ("POST", "/v1.0/directoryObjects/getByIds", None, (3, 0)),
        ("POST", "/v1.0/invitations", None, (1, 1)),  # any write: 1 RU + 1 write
        ("PATCH", "/v1.0/users/u1", None, (1, 1)),
        ("PUT", "/v1.0/users/u1/manager/$ref", None, (1, 1)),
        ("DELETE", "/v1.0/users/u1", None, (1, 1)),
        ("post", "v1.0/directory/deletedItems/x/restore", None, (1, 1)),
        ("POST", "/v1.0/$batch", None, (0, 0)),  # sub-requests are charged, not the envelope
    ],
)
def test_request_cost_matches_documented_table(method, path, query, expected):
    assert request_cost(method, path, query) == expected


def test_tenant_size_classes():
    assert [app_tenant_ru_limit(n) for n in (0, 49, 50, 500, 501, 100_000)] == [
        3500, 3500, 5000, 5000, 8000, 8000]


# --- throttling --------------------------------------------------------------------------------------
def test_exactly_the_write_budget_is_accepted_then_refused_with_headers():
    clock = FakeClock()
    th = Throttler(clock, "documented", time_scale=1.0)
    accepted = sum(th.charge(TENANT, APP, 2000, 1, 1).allowed for _ in range(3000))
    assert accepted == 3000
    d = th.charge(TENANT, APP, 2000, 1, 1)
    assert not d.allowed
    assert d.headers["x-ms-resource-unit"] == "1"
    assert d.headers["x-ms-throttle-scope"] == f"Tenant_Application/Write/{APP}/{TENANT}"
    assert d.headers["x-ms-throttle-information"] == "WriteLimitExceeded"
    retry = int(d.headers["Retry-After"])
    assert retry == d.retry_after_s and 150 <= retry <= 152  # the window is 150 s
    assert 0.8 <= float(d.headers["x-ms-throttle-limit-percentage"]) <= 1.8


@pytest.mark.parametrize(("size", "limit"), [(10, 3500), (200, 5000), (2000, 8000)])
def test_resource_unit_budget_by_tenant_size(size, limit):
    th = Throttler(FakeClock(), "documented")
    cost = request_cost("GET", "/v1.0/users")[0]  # 2 RU
    accepted = sum(th.charge(TENANT, APP, size, cost, 0).allowed for _ in range(limit // cost + 50))
    assert accepted == limit // cost
    d = th.charge(TENANT, APP, size, cost, 0)
    assert d.headers["x-ms-throttle-scope"] == f"Tenant_Application/ReadWrite/{APP}/{TENANT}"
    assert d.headers["x-ms-throttle-information"] == "ResourceUnitLimitExceeded"
    assert d.headers["x-ms-resource-unit"] == "2"


def test_windows_roll_over_and_retry_after_is_honest():
    clock = FakeClock()
    th = Throttler(clock, "documented")
    for _ in range(3000):
        assert th.charge(TENANT, APP, 2000, 1, 1).allowed
    refused = th.charge(TENANT, APP, 2000, 1, 1)
    assert not refused.allowed
    clock.t += refused.retry_after_s - 1.5  # before Retry-After: still refused
    assert not th.charge(TENANT, APP, 2000, 1, 1).allowed
    clock.t += 1.5
    assert th.charge(TENANT, APP, 2000, 1, 1).allowed
    clock.t += 151  # a whole window later everything is free again
    assert sum(th.charge(TENANT, APP, 2000, 1, 1).allowed for _ in range(3001)) == 3000


def test_retry_after_is_in_real_seconds_under_time_scale():
    clock = FakeClock()
    th = Throttler(clock, "documented", time_scale=60.0)
    for _ in range(3000):
        th.charge(TENANT, APP, 2000, 1, 1)
    d = th.charge(TENANT, APP, 2000, 1, 1)
    assert d.retry_after_s == math.ceil(150 / 60) == int(d.headers["Retry-After"])


def test_throttler_reads_a_sandbox_clock_object():
    class Clock:
        time_scale = 10.0

        def now(self) -> float:
            return 5.0

    th = Throttler(Clock())
    assert th.time_scale == 10.0 and th.clock() == 5.0
    with pytest.raises(ThrottleError, match="mode"):
        Throttler(Clock(), "sometimes")  # type: ignore[arg-type]


def test_client_at_full_write_rate_gets_the_documented_throughput():
    """A client that retries exactly after Retry-After sees ~3,000 writes accepted per 150 s."""
    clock = FakeClock(0.0)
    th = Throttler(clock, "documented")
    accepted_at = []
    while clock.t < 1500:
        d = th.charge(TENANT, APP, 2000, 1, 1)
        if d.allowed:
            accepted_at.append(clock.t)
            clock.t += 0.01
        else:
            clock.t += d.retry_after_s
    assert 0.97 * 30_000 <= len(accepted_at) <= 30_000
    # never more than the budget in any 150 s window
    j = 0
    for i, t in enumerate(accepted_at):
        while accepted_at[j] <= t - 150:
            j += 1
        assert i - j + 1 <= 3000


def test_limit_percentage_header_only_above_80_percent():
    th = Throttler(FakeClock(), "documented")
    for _ in range(2399):
        d = th.charge(TENANT, APP, 2000, 1, 1)
    assert "x-ms-throttle-limit-percentage" not in d.headers  # 2399/3000
    for _ in range(2):
        d = th.charge(TENANT, APP, 2000, 1, 1)
    assert float(d.headers["x-ms-throttle-limit-percentage"]) == pytest.approx(2401 / 3000, abs=0.01)
    assert "Retry-After" not in d.headers


def test_tenant_write_limit_spans_apps():
    th = Throttler(FakeClock(), "documented")
    apps = [str(uuid.uuid5(uuid.NAMESPACE_DNS, f"app{i}")) for i in range(7)]
    for app in apps[:6]:  # 6 apps x 3,000 = the tenant's 18,000 per 5 minutes
        assert sum(th.charge(TENANT, app, 2000, 1, 1).allowed for _ in range(3000)) == 3000
    d = th.charge(TENANT, apps[6], 2000, 1, 1)
    assert not d.allowed
    assert d.headers["x-ms-throttle-scope"] == f"Tenant/Write/{apps[6]}/{TENANT}"


def test_application_write_limit_spans_tenants():
    th = Throttler(FakeClock(), "documented")
    tenants = [str(uuid.uuid5(uuid.NAMESPACE_DNS, f"t{i}")) for i in range(12)]
    accepted = 0
    for tenant in tenants:
        accepted += sum(th.charge(tenant, APP, 2000, 1, 1).allowed for _ in range(3000))
    assert accepted == 35_000
    d = th.charge(str(uuid.uuid4()), APP, 2000, 1, 1)
    assert d.headers["x-ms-throttle-scope"].startswith(f"Application/Write/{APP}/")


def test_off_mode_allows_everything_but_reports_cost():
    th = Throttler(FakeClock(), "off")
    decisions = [th.charge(TENANT, APP, 10, 2, 1) for _ in range(10_000)]
    assert all(d.allowed for d in decisions)
    assert decisions[-1].headers == {"x-ms-resource-unit": "2"}


def test_throttler_is_thread_safe():
    th = Throttler(FakeClock(), "documented")
    results: list[bool] = []
    lock = threading.Lock()

    def hammer():
        mine = [th.charge(TENANT, APP, 2000, 1, 1).allowed for _ in range(500)]
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(results) == 3000 and len(results) == 4000


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.floats(0, 40), st.integers(1, 900)), min_size=1, max_size=80))
def test_property_no_window_ever_exceeds_the_limit_and_retry_after_suffices(steps):
    clock = FakeClock(0.0)
    th = Throttler(clock, "documented")
    accepted: list[tuple[float, int]] = []
    for dt, writes in steps:
        clock.t += dt
        d = th.charge(TENANT, APP, 2000, 1, writes)
        if d.allowed:
            accepted.append((clock.t, writes))
            in_window = sum(w for t, w in accepted if t > clock.t - 150)
            assert in_window <= 3000
        else:
            assert d.retry_after_s >= 1
            # A client that waits exactly Retry-After gets the same request through.
            clock.t += d.retry_after_s
            assert th.charge(TENANT, APP, 2000, 1, writes).allowed
            accepted.append((clock.t, writes))
            assert sum(w for t, w in accepted if t > clock.t - 150) <= 3000


# --- faults ------------------------------------------------------------------------------------------
def test_parse_documented_grammar_and_layering():
    spec = FaultSpec.parse("429=0.3,5xx=0.04,reset=0.01,latency_ms=20;tenant=fabrikam,kind=write,burst429=3,429=0.5")
    assert len(spec.rules) == 2
    generic = spec.effective("contoso", "write")
    assert generic.p429 == 0.3 and generic.p_status == (0.01, 0.01, 0.01, 0.01)
    assert generic.latency_s == pytest.approx(0.02) and generic.burst429 == 1
    special = spec.effective("fabrikam", "write")  # overrides 429 and burst, inherits the rest
    assert special.p429 == 0.5 and special.burst429 == 3 and special.p_reset == 0.01
    assert spec.effective("fabrikam", "read").p429 == 0.3
    assert FaultSpec.parse("").rules == () and FaultSpec.parse(None).rules == ()
    assert FaultSpec.parse(" 429 = 0.1 ; ").rules[0].values == {"429": 0.1}


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("429=1.5", "'429'"),
        ("foo=1", "unknown key 'foo'"),
        ("429", "'429' is not KEY=VALUE"),
        ("kind=delete,429=0.1", "kind 'delete'"),
        ("tenant=bad name,429=0.1", "tenant name 'bad name'"),
        ("429=0.1,,5xx=0.1", "empty entry"),
        ("429=abc", "'429=abc' is not a number"),
        ("burst429=0", "burst429"),
        ("burst429=2.5", "burst429"),
        ("429=0.1,429=0.2", "appears twice"),
        ("429=0.7,5xx=0.5", "add up to 1.2"),
        ("429=0.6;tenant=x,5xx=0.6", "tenant 'x'"),
        ("latency_ms=-5", "latency_ms"),
        ("429=nan", "finite"),
    ],
)
def test_parse_errors_name_the_bad_token(spec, fragment):
    with pytest.raises(FaultSpecError) as err:
        FaultSpec.parse(spec)
    assert fragment in str(err.value)
    assert "fault spec" in str(err.value)


_GRAMMAR_BITS = st.sampled_from(
    ["tenant", "kind", "429", "5xx", "500", "reset", "latency_ms", "burst429", "read", "write", "=", ",", ";",
     "0.5", "1", "2", "-1", "nan", "1e9", " ", "contoso", "é", "\x00", "0x1", "٣"]
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=60), st.lists(_GRAMMAR_BITS, max_size=25).map("".join)))
def test_property_parse_raises_only_fault_spec_error(text):
    try:
        spec = FaultSpec.parse(text)
    except FaultSpecError:
        return
    # Whatever parsed gives valid probabilities for any tenant and kind, and decide() only says valid things.
    inj = FaultInjector(spec, seed=1)
    for kind in ("read", "write"):
        eff = spec.effective("anyone", kind)
        assert 0 <= eff.p429 + sum(eff.p_status) + eff.p_reset <= 1 + 1e-9
        for tenant in ("anyone", "contoso"):
            for _ in range(5):
                f = inj.decide(tenant, kind)
                assert f is None or (f.kind in (None, "429", "500", "502", "503", "504", "reset") and f.latency_s >= 0)


def _run(inj: FaultInjector, tenant: str, kind: str, n: int) -> list[str | None]:
    out = []
    for _ in range(n):
        f = inj.decide(tenant, kind)
        out.append(f.kind if f else None)
    return out


def test_faults_are_reproducible_per_seed_and_per_tenant_stream():
    spec = "429=0.2,5xx=0.1,reset=0.05"
    a = _run(FaultInjector(spec, seed=7), "contoso", "read", 500)
    b = _run(FaultInjector(spec, seed=7), "contoso", "read", 500)
    c = _run(FaultInjector(spec, seed=8), "contoso", "read", 500)
    assert a == b and a != c
    # Interleaving another tenant's (and another kind's) requests doesn't shift contoso's stream.
    inj = FaultInjector(spec, seed=7)
    mixed = []
    for _ in range(500):
        inj.decide("fabrikam", "read")
        inj.decide("contoso", "write")
        f = inj.decide("contoso", "read")
        mixed.append(f.kind if f else None)
    assert mixed == a


def test_concurrent_tenants_do_not_shift_each_others_faults():
    spec = "429=0.2,5xx=0.2,reset=0.1"
    sequential = {t: _run(FaultInjector(spec, seed=5), t, "write", 2000) for t in ("a", "b", "c", "d")}
    shared = FaultInjector(spec, seed=5)
    results: dict[str, list[str | None]] = {}

    def one(tenant: str) -> None:
        results[tenant] = _run(shared, tenant, "write", 2000)

    threads = [threading.Thread(target=one, args=(t,)) for t in sequential]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == sequential


def test_fault_rates_within_tolerance():
    n = 20_000
    kinds = collections.Counter(_run(FaultInjector("429=0.3,5xx=0.1,reset=0.05", seed=1), "t", "write", n))
    assert kinds["429"] / n == pytest.approx(0.3, abs=0.02)
    for code in ("500", "502", "503", "504"):
        assert kinds[code] / n == pytest.approx(0.025, abs=0.006)
    assert kinds["reset"] / n == pytest.approx(0.05, abs=0.008)
    assert kinds[None] / n == pytest.approx(0.55, abs=0.02)


def test_burst429_makes_runs_of_at_least_n():
    seq = _run(FaultInjector("429=0.05,burst429=4", seed=3), "t", "read", 5000)
    runs = [len(list(g)) for k, g in itertools.groupby(seq) if k == "429"]
    assert runs and all(r >= 4 for r in runs[:-1])
    assert sum(runs) / 5000 > 0.1  # bursts multiply the 429 share


def test_targeting_by_tenant_and_kind_and_latency():
    inj = FaultInjector("tenant=fabrikam,kind=write,500=1;latency_ms=25", seed=0)
    w = inj.decide("fabrikam", "write")
    assert w == Fault("500", 0.025) and w.status == 500
    assert inj.decide("fabrikam", "read") == Fault(None, 0.025)
    assert inj.decide("contoso", "write") == Fault(None, 0.025)
    assert FaultInjector("", 0).decide("x", "read") is None
    assert FaultInjector("reset=1", 0).decide("x", "read").status is None
    with pytest.raises(ValueError, match="'read' or 'write'"):
        inj.decide("x", "delete")


# --- seeding ------------------------------------------------------------------------------------------
USER_KEYS = {
    "id", "userPrincipalName", "mail", "otherMails", "displayName", "givenName", "surname", "mailNickname",
    "jobTitle", "department", "companyName", "officeLocation", "city", "state", "country", "usageLocation",
    "employeeId", "mobilePhone", "accountEnabled", "userType", "creationType", "externalUserState",
    "showInAddressList", "createdDateTime", "_managerId",
}


@pytest.fixture(scope="module")
def big():
    t = generate_tenant("litmus", 5000, seed=3)
    return t, list(t.users)


def test_same_seed_same_tenant_other_seed_other_tenant():
    a, b, c = (generate_tenant("contoso", 300, seed=s) for s in (1, 1, 2))
    assert list(a.users)[:50] == list(b.users)[:50]
    assert (a.tenant_id, a.client_id, a.client_secret, a.app_object_id) == (
        b.tenant_id, b.client_id, b.client_secret, b.app_object_id)
    assert a.groups == b.groups and a.members == b.members
    assert a.tenant_id != c.tenant_id and a.users[10]["id"] != c.users[10]["id"]
    assert a.users[10]["displayName"] != c.users[10]["displayName"] or a.users[11] != c.users[11]
    for value in (a.tenant_id, a.client_id, a.app_object_id, a.users[0]["id"]):
        assert uuid.UUID(value).version == 5


def test_client_secret_looks_like_entra_and_stays_out_of_repr():
    t = generate_tenant("fabrikam", 10)
    assert re.fullmatch(r"[A-Za-z]{3}\dQ~[A-Za-z0-9_.~-]{34}", t.client_secret)
    assert t.client_secret != generate_tenant("contoso", 10).client_secret
    assert t.client_secret not in repr(t)


def test_user_dicts_are_graph_shaped(big):
    t, users = big
    assert len(users) == len(t.users) == t.user_count == 5000
    for u in users:
        assert set(u) == USER_KEYS
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", u["createdDateTime"])
    assert len({u["id"] for u in users}) == 5000
    assert len({u["userPrincipalName"].lower() for u in users}) == 5000
    assert all(u["userPrincipalName"].endswith("@litmus.onmicrosoft.com") for u in users)
    assert t.users[-1] == users[-1] and t.users[2:4] == users[2:4]


def test_distributions(big):
    _, users = big
    n = len(users)
    members = [u for u in users if u["userType"] == "Member"]
    guests = [u for u in users if u["userType"] == "Guest"]
    assert 0.01 <= sum(not u["accountEnabled"] for u in users) / n <= 0.035
    assert 0.01 <= len(guests) / n <= 0.06
    assert any(u["mail"] is None for u in members)
    names = collections.Counter(u["displayName"] for u in users)
    assert any(c > 1 for c in names.values())
    assert any(not u["displayName"].isascii() for u in users)
    assert any("'" in u["displayName"] for u in users)
    # Users 1..5 always show the awkward cases (drawn per tenant): an apostrophe, diacritics, letters that
    # do not decompose, a surname with a space, and user 5 repeating user 2.
    first = [u["displayName"] for u in users[1:6]]
    assert "'" in first[0] and not first[1].isascii() and set(first[2]) & set("øØłŁæÆßđĐıþÞ")
    assert " " in users[4]["surname"] and first[4] == first[1]
    assert users[5]["mailNickname"] == users[2]["mailNickname"] + "2"  # still unique
    assert len({u["country"] for u in members}) >= 10
    assert all(u["usageLocation"] and len(u["usageLocation"]) == 2 for u in members)
    assert len({u["department"] for u in members}) >= 10
    assert sum(u["employeeId"] is not None for u in members) / len(members) > 0.95


def test_guests_look_like_accepted_b2b_users(big):
    _, users = big
    guests = [u for u in users if u["userType"] == "Guest"]
    for g in guests:
        assert g["creationType"] == "Invitation" and g["externalUserState"] == "Accepted"
        alias, domain = g["mail"].split("@")
        assert g["userPrincipalName"] == f"{alias}_{domain}#EXT#@litmus.onmicrosoft.com"
        assert g["_managerId"] is None
    for m in (u for u in users if u["userType"] == "Member"):
        assert m["creationType"] is None and m["externalUserState"] is None


def test_manager_tree_has_the_ceo_on_top(big):
    _, users = big
    by_id = {u["id"]: u for u in users}
    members = [u for u in users if u["userType"] == "Member"]
    roots = [u for u in members if u["_managerId"] is None]
    assert len(roots) == 1 and roots[0]["jobTitle"] == "Chief Executive Officer"
    for u in members:
        seen, cur = set(), u
        while cur["_managerId"] is not None:
            assert cur["id"] not in seen
            seen.add(cur["id"])
            cur = by_id[cur["_managerId"]]
            assert cur["userType"] == "Member"
        assert cur is roots[0]
        assert len(seen) <= 8


def test_groups_dynamic_role_assignable_and_assigned_scope(big):
    t, users = big
    by_name = {g["displayName"]: g for g in t.groups}
    dynamic = [g for g in t.groups if "DynamicMembership" in g["groupTypes"]]
    assert len(dynamic) >= 3 and all(g["membershipRule"] and g["membershipRuleProcessingState"] == "On"
                                     for g in dynamic)
    pfa = by_name["Privileged Finance Admins"]
    assert pfa["isAssignableToRole"] and pfa["membershipRule"] == '(user.department -eq "Treasury")'
    members_of = collections.defaultdict(set)
    for gid, mid in t.members:
        members_of[gid].add(mid)
    assert members_of[pfa["id"]] == {u["id"] for u in users if u["department"] == "Treasury"}
    directors = {u["id"] for u in users if u["jobTitle"] and "director" in u["jobTitle"].lower()}
    assert members_of[by_name["All Directors"]["id"]] == directors and directors
    sync = by_name["XTS Sync – Pilot"]
    assert sync["groupTypes"] == [] and sync["membershipRule"] is None
    nested = by_name["XTS Sync – Pilot (wave 2)"]
    assert nested["id"] in members_of[sync["id"]]  # a nested group: must not be expanded by the sync
    assert len(members_of[sync["id"]]) > 100
    assert not members_of[sync["id"]] & members_of[nested["id"]]
    user_ids = {u["id"] for u in users}
    group_ids = {g["id"] for g in t.groups}
    assert all(m in user_ids or m in group_ids for _, m in t.members)


def test_seeded_dynamic_memberships_agree_with_the_rule_engine():
    """The seed precomputes dynamic members; xts_pipeline.dynamic_rules must reach the same sets."""
    from xts_pipeline.dynamic_rules import evaluate_rule

    for t in demo_seed().tenants:
        users = list(t.users)
        for g in (g for g in t.groups if g["membershipRule"]):
            expected = {u["id"] for u in users if evaluate_rule(g["membershipRule"], u)}
            assert {m for gid, m in t.members if gid == g["id"]} == expected, (t.name, g["displayName"])


def test_demo_seed_is_a_merger():
    demo = demo_seed()
    sizes = {t.name: t.user_count for t in demo.tenants}
    assert sizes == {"contoso": 2000, "fabrikam": 500, "northwind": 300}
    contoso = demo.tenant("contoso")
    ceo = contoso.users[0]
    assert (ceo["displayName"], ceo["jobTitle"], ceo["_managerId"]) == ("Megan Bowen", "Chief Executive Officer", None)
    assert contoso.domain == "contoso.onmicrosoft.com"
    assert {"XTS Sync – Fabrikam", "XTS Sync – Northwind"} <= {g["displayName"] for g in contoso.groups}
    assert len({t.tenant_id for t in demo.tenants}) == 3
    for t in demo.tenants:
        assert t.permissions == ALL_PERMISSIONS
    pairs = {(p.tenant_name, p.partner_tenant_name) for p in demo.partner_policies}
    assert len(pairs) == 6 and ("fabrikam", "contoso") in pairs
    assert all(p.is_sync_allowed and p.inbound_auto_consent and p.outbound_auto_consent
               for p in demo.partner_policies)
    assert demo_seed().tenant("fabrikam").users[:20] == demo.tenant("fabrikam").users[:20]


def test_demo_tenants_hold_different_people_and_admins_administer():
    """Names come from (tenant, seed): same-seed tenants must not share people by position, or a merger
    sync meets the target's admins as 'exact' look-alikes (noise that hides the real attack cases)."""
    demo = demo_seed()
    by_tenant = {t.name: list(t.users) for t in demo.tenants}
    assert {t.seed for t in demo.tenants} == {0}
    for a, b in itertools.combinations(by_tenant, 2):
        same = [i for i, (x, y) in enumerate(zip(by_tenant[a], by_tenant[b], strict=False))
                if x["displayName"] == y["displayName"]]
        assert len(same) <= 2, (a, b, same)  # chance alone; users 1..5 used to be identical everywhere
    for t in demo.tenants:
        users = {u["id"]: u for u in by_tenant[t.name]}
        admins = next(g["id"] for g in t.groups if g["displayName"] == "Tenant Administrators")
        members = {m for g, m in t.members if g == admins}
        holders = {m for _, m in t.role_members}
        assert len(members) == 3 and members <= holders, t.name
        assert {users[m]["department"] for m in members} == {"IT"}, t.name
    # Chance look-alikes of contoso's protected identities among fabrikam's members stay few.
    contoso = demo.tenant("contoso")
    users = {u["id"]: u for u in by_tenant["contoso"]}
    assignable = {g["id"] for g in contoso.groups if g["isAssignableToRole"]}
    protected = {users[m]["displayName"] for g, m in contoso.members if g in assignable and m in users}
    protected |= {users[m]["displayName"] for _, m in contoso.role_members} | {"Megan Bowen"}
    hits = [u["displayName"] for u in by_tenant["fabrikam"] if u["userType"] == "Member"
            and u["displayName"] in protected]
    assert len(hits) <= 3, hits


def test_demo_fixtures_are_the_documented_attack_cases():
    fabrikam = list(demo_seed().tenant("fabrikam").users)
    lookalikes = [u for u in fabrikam if u["displayName"] == "M\u0435gan Bowen"]  # Cyrillic small ie
    assert len(lookalikes) == 1
    fake = lookalikes[0]
    assert (fake["userType"], fake["creationType"], fake["accountEnabled"], fake["department"]) == (
        "Member", None, True, "Sales")
    assert fake["mail"] and fake["userPrincipalName"].endswith("@fabrikam.onmicrosoft.com")
    assert "Megan Bowen" not in {u["displayName"] for u in fabrikam}
    treasury = [u for u in fabrikam if u["department"] == "Treasury" and u["userType"] == "Member"
                and u["accountEnabled"]]
    assert any(u["displayName"] == "Henrik Lindahl" for u in treasury)
    # Fixtures sit just before the guests_from guests and shift nobody else.
    assert [u["userType"] for u in fabrikam[-5:]] == ["Guest"] * 5
    assert {u["displayName"] for u in fabrikam[-7:-5]} == {"M\u0435gan Bowen", "Henrik Lindahl"}
    plain = list(generate_tenant("fabrikam", 500, "fabrikam.onmicrosoft.com", company="Fabrikam, Inc.",
                                 ceo="Adele Vance", sync_groups=["Contoso"]).users)
    assert [u["id"] for u in plain] == [u["id"] for u in fabrikam]
    assert plain[100] == fabrikam[100] and plain[-8]["displayName"] == fabrikam[-8]["displayName"]


def test_seed_file_fixtures_are_checked(tmp_path):
    def load(fixtures: str, users: int = 20):
        f = tmp_path / "seed.yaml"
        f.write_text(f"tenants:\n  - name: alpha\n    users: {users}\n    fixtures: {fixtures}\n")
        return load_seed_file(f)

    ok = load('[{given: "\u0410lice", surname: Admin, department: IT, job_title: Systems Administrator}]')
    alice = [u for u in ok.tenant("alpha").users if u["surname"] == "Admin"]
    assert [(u["displayName"], u["jobTitle"], u["department"]) for u in alice] == [
        ("\u0410lice Admin", "Systems Administrator", "IT")]
    for fixtures, message in (
        ("[{given: A, surname: B, department: Bakery}]", "department 'Bakery'; use one of Engineering"),
        ("[{given: A, surname: B}]", r"fixtures\[0\]: must be a mapping with given, surname, department"),
        ("[{given: A, surname: B, department: IT, boss: X}]", r"fixtures\[0\]: must be a mapping"),
        ("[{given: '', surname: B, department: IT}]", r"fixtures\[0\]\.given: must be a non-empty text"),
        ("{given: A}", "fixtures: must be a list"),
    ):
        with pytest.raises(SeedError, match=message):
            load(fixtures)
    with pytest.raises(SeedError, match="no room for 1 fixture"):
        load("[{given: A, surname: B, department: IT}]", users=6)


def test_demo_has_pre_merger_guests_of_in_scope_parent_users():
    demo = demo_seed()
    contoso, fabrikam = demo.tenant("contoso"), demo.tenant("fabrikam")
    scope = next(g["id"] for g in contoso.groups if g["displayName"] == "XTS Sync – Fabrikam")
    in_scope = {m for g, m in contoso.members if g == scope}
    by_mail = {u["mail"]: u for u in contoso.users if u["mail"]}
    parent_guests = [u for u in fabrikam.users if u["mail"] and u["mail"].endswith("@contoso.onmicrosoft.com")]
    assert len(parent_guests) == 5 and fabrikam.user_count == len(fabrikam.users) == 500
    for g in parent_guests:
        source = by_mail[g["mail"]]
        assert source["id"] in in_scope and source["displayName"] == g["displayName"]
        alias = g["mail"].split("@")[0]
        assert g["userPrincipalName"] == f"{alias}_contoso.onmicrosoft.com#EXT#@fabrikam.onmicrosoft.com"
        assert (g["userType"], g["creationType"], g["externalUserState"]) == ("Guest", "Invitation", "Accepted")
    # Adding those guests shifts no other user: the rest equals a tenant generated without them.
    plain = generate_tenant("fabrikam", 500, "fabrikam.onmicrosoft.com", company="Fabrikam, Inc.",
                            ceo="Adele Vance", sync_groups=["Contoso"])
    assert fabrikam.users[:480] == plain.users[:480]


def test_seed_file_with_explicit_policies(tmp_path):
    f = tmp_path / "seed.yaml"
    f.write_text(
        "tenants:\n  - {name: alpha, users: 60, seed: 4, permissions: [User.Read.All]}\n"
        "  - {name: beta, users: 5, domain: beta.example.com}\n"
        "partner_policies:\n  - {tenant: beta, partner: alpha, is_sync_allowed: false}\n",
        encoding="utf-8",
    )
    seed = load_seed_file(f)
    assert seed.tenant("alpha").permissions == ["User.Read.All"]
    assert seed.tenant("beta").users[0]["userPrincipalName"].endswith("@beta.example.com")
    assert seed.partner_policies == [PartnerPolicy(tenant_name="beta", partner_tenant_name="alpha",
                                                   is_sync_allowed=False)]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("tenants: [ {name: a, users: 3}\n  bad", "line"),
        ("tenants: []\n", "tenants"),
        ("tenants:\n  - {name: a, users: 3, colour: red}\n", "tenants[0]: unknown keys ['colour']"),
        ("tenants:\n  - {name: a, users: 0}\n", "tenants[0]"),
        ("tenants:\n  - {name: A B, users: 3}\n", "tenant name 'A B'"),
        ("tenants:\n  - {name: a, users: 3}\n  - {name: a, users: 3}\n", "listed twice"),
        ("tenants:\n  - {name: a, users: 3}\npartner_policies:\n  - {tenant: a, partner: zz}\n",
         "partner_policies[0].partner"),
        ("tenants:\n  - {name: a, users: 3, permissions: [Mail.Send]}\n", "Mail.Send"),
        ("other: 1\n", "unknown keys"),
        ("tenants:\n  - {name: a, users: 3, guests_from: {b: 1}}\n  - {name: b, users: 3}\n",
         "tenants[0].guests_from.b: 'b' must be a tenant listed before 'a'"),
        ("tenants:\n  - {name: b, users: 9}\n  - {name: a, users: 9, guests_from: {b: -1}}\n", ">= 0"),
    ],
)
def test_seed_file_errors_name_file_and_entry(tmp_path, text, fragment):
    f = tmp_path / "bad.yaml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(SeedError) as err:
        load_seed_file(f)
    assert str(f) in str(err.value) and fragment in str(err.value)


@pytest.mark.parametrize("name", ["a-", "-a", "Contoso", "con toso", "", "x" * 64])
def test_bad_tenant_names_are_refused(name):
    with pytest.raises(SeedError, match="tenant name"):
        generate_tenant(name, 3)


def test_missing_seed_file_is_named(tmp_path):
    with pytest.raises(SeedError, match="nope.yaml"):
        load_seed_file(tmp_path / "nope.yaml")


@settings(max_examples=25, deadline=None)
@given(st.from_regex(r"[a-z]([a-z0-9-]{0,9}[a-z0-9])?", fullmatch=True), st.integers(1, 400), st.integers(0, 2**31))
def test_property_generated_tenants_are_consistent(name, n, seed):
    t = generate_tenant(name, n, seed=seed)
    users = list(t.users)
    ids = {u["id"] for u in users}
    assert len(ids) == n == len({u["userPrincipalName"].lower() for u in users})
    assert all(u["_managerId"] is None or u["_managerId"] in ids for u in users)
    assert users[0]["jobTitle"] == "Chief Executive Officer" and users[0]["accountEnabled"]
