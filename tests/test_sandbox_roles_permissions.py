"""Least-privilege permissions per endpoint, directory roles, retry_after faults and one-line CLI errors.

Everything that talks to Graph goes over HTTPS to a real sandbox subprocess.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from xts_pipeline.config.permissions import optional_permissions_for_roles, permissions_for_roles
from xts_pipeline.sandbox.faults import FaultInjector, FaultSpec, FaultSpecError
from xts_pipeline.sandbox.permissions import DEMO_APP_PERMISSIONS, KNOWN_PERMISSIONS
from xts_pipeline.sandbox.seed import ALL_PERMISSIONS, demo_seed, generate_tenant

GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
USER_ADMIN = "fe930be7-5e62-47db-91af-98c3a49a38b1"
PRIVILEGED_ROLE_ADMIN = "e8611ab8-c189-46e8-94e1-60213ab1f814"

SMALL_SEED = """\
tenants:
  - {name: alpha, users: 40, sync_groups: [Beta]}
  - {name: beta, users: 30}
"""


# ---- grants ------------------------------------------------------------------------------------
def test_demo_apps_get_exactly_what_a_source_and_target_tenant_needs():
    needed = set(permissions_for_roles({"source", "target"}, uses_assigned_groups=True))
    optional = set(optional_permissions_for_roles({"source", "target"}))
    assert optional == {"RoleManagement.Read.Directory"} and not optional & needed
    expected = needed | optional  # the demo also reads directory-role holders
    assert set(DEMO_APP_PERMISSIONS) == expected and len(DEMO_APP_PERMISSIONS) == len(expected)
    assert set(ALL_PERMISSIONS) == expected
    assert generate_tenant("solo", 5).permissions == ALL_PERMISSIONS
    for tenant in demo_seed().tenants:
        assert set(tenant.permissions) == expected, tenant.name
    # No broad grants sneak in.
    assert not {p for p in expected if p.startswith(("Directory.", "Group.Read", "Application.ReadWrite.All"))}


def test_seeds_may_grant_any_permission_a_route_accepts():
    assert {"Group.Read.All", "Directory.Read.All", "Application.Read.All"} <= set(KNOWN_PERMISSIONS)
    assert generate_tenant("narrow", 3, permissions=["Directory.Read.All"]).permissions == ["Directory.Read.All"]


@pytest.fixture
def small(make_sandbox, tmp_path):
    seed_file = tmp_path / "small.yaml"
    seed_file.write_text(SMALL_SEED)
    return make_sandbox(seed=str(seed_file), throttle="off")


def _call(sb, graph, perms: list[str], method: str, path: str, body: dict | None = None):
    """Grant exactly `perms` to alpha's app, get a fresh token, make one call."""
    sb.admin("PUT", "tenants/alpha/permissions", json={"permissions": perms})
    return graph(sb, "alpha").request(method, path, json=body)


def test_route_permissions_match_graphs_least_privilege_table(small, graph):
    sb = small
    alpha, beta = sb.tenant("alpha"), sb.tenant("beta")
    app = alpha["app_object_id"]
    uid = sb.admin("GET", "tenants/alpha/users")["value"][1]["id"]
    gid = _call(sb, graph, ALL_PERMISSIONS, "GET", "/groups?$top=1").json()["value"][0]["id"]
    invite = {"invitedUserEmailAddress": "ext@litware.example", "inviteRedirectUrl": "https://myapps.microsoft.com"}

    def ext(name: str) -> dict:
        return {"name": name, "dataType": "String", "targetObjects": ["User"]}

    cases = [
        # The removed sandbox simplification: User.ReadWrite.All does not register extension properties.
        (["User.ReadWrite.All"], "POST", f"/applications/{app}/extensionProperties", ext("a"), 403),
        (["User.ReadWrite.All"], "GET", f"/applications/{app}/extensionProperties", None, 403),
        (["User.ReadWrite.All"], "POST", "/invitations", invite, 201),  # a documented higher privilege
        (["User.ReadWrite.All"], "GET", "/groups", None, 403),
        (["Application.ReadWrite.OwnedBy"], "POST", f"/applications/{app}/extensionProperties", ext("b"), 201),
        (["Application.ReadWrite.OwnedBy"], "GET", f"/applications/{app}/extensionProperties", None, 200),
        (["Application.ReadWrite.OwnedBy"], "GET", f"/applications/{app}", None, 200),
        (["Application.ReadWrite.OwnedBy"], "GET", "/users", None, 403),
        (["Application.Read.All"], "GET", f"/applications/{app}/extensionProperties", None, 200),
        (["Application.Read.All"], "POST", f"/applications/{app}/extensionProperties", ext("c"), 403),
        (["Directory.ReadWrite.All"], "POST", f"/applications/{app}/extensionProperties", ext("d"), 201),
        (["User.Invite.All"], "POST", "/invitations", invite, 201),
        (["User.Invite.All"], "GET", "/users", None, 403),
        (["User.Invite.All"], "PATCH", f"/users/{uid}", {"jobTitle": "x"}, 403),
        (["User.Read.All"], "GET", f"/users/{uid}", None, 200),
        (["User.Read.All"], "GET", "/users/delta", None, 200),
        (["User.Read.All"], "GET", "/directory/deletedItems/microsoft.graph.user", None, 200),
        (["User.Read.All"], "PUT", f"/users/{uid}/manager/$ref",
         {"@odata.id": f"{sb.info['graph_url']}/users/{uid}"}, 403),
        (["User.Read.All"], "GET", "/groups", None, 403),
        (["GroupMember.Read.All"], "GET", "/groups", None, 200),
        (["GroupMember.Read.All"], "GET", f"/groups/{gid}/members", None, 200),
        (["GroupMember.Read.All"], "GET", "/users", None, 403),
        (["Group.Read.All"], "GET", f"/groups/{gid}", None, 200),
        (["RoleManagement.Read.Directory"], "GET", "/directoryRoles", None, 200),
        (["RoleManagement.Read.Directory"], "GET", "/users", None, 403),
        (["Directory.Read.All"], "GET", "/directoryRoles", None, 200),
        (["Directory.Read.All"], "GET", "/users", None, 200),
        (["Directory.Read.All"], "GET", "/groups", None, 200),
        (["Directory.Read.All"], "PATCH", f"/users/{uid}", {"jobTitle": "x"}, 403),
        (["Directory.Read.All"], "POST", "/invitations", invite, 403),
        (["User.ReadWrite.All"], "GET", "/directoryRoles", None, 403),
        (["Policy.Read.All"], "GET", f"/policies/crossTenantAccessPolicy/partners/{beta['tenant_id']}", None, 200),
        (["Policy.Read.All"], "PUT",
         f"/policies/crossTenantAccessPolicy/partners/{beta['tenant_id']}/identitySynchronization",
         {"userSyncInbound": {"isSyncAllowed": False}}, 403),
    ]
    wrong = []
    for perms, method, path, body, status in cases:
        r = _call(sb, graph, perms, method, path, body)
        if r.status_code != status:
            wrong.append(f"{perms} {method} {path}: {r.status_code} (want {status}) {r.text[:200]}")
        elif status == 403:
            assert r.json()["error"]["code"] == "Authorization_RequestDenied"
    assert not wrong, "\n".join(wrong)


def test_403_names_the_least_privileged_permission_first(small, graph):
    app = small.tenant("alpha")["app_object_id"]
    r = _call(small, graph, ["User.ReadWrite.All"], "POST", f"/applications/{app}/extensionProperties",
              {"name": "xtsSourceTenantId", "dataType": "String", "targetObjects": ["User"]})
    message = r.json()["error"]["message"]
    assert r.status_code == 403
    assert "needs the application permission Application.ReadWrite.OwnedBy (or a higher-privileged one: " \
           "Application.ReadWrite.All, Directory.ReadWrite.All)" in message


# ---- directory roles ---------------------------------------------------------------------------
def test_directory_roles_list_and_members(sandbox, graph):
    g = graph(sandbox, "contoso")
    r = g.get("/directoryRoles")
    assert r.status_code == 200, r.text
    roles = {x["roleTemplateId"]: x for x in r.json()["value"]}
    assert set(roles) == {GLOBAL_ADMIN, USER_ADMIN, PRIVILEGED_ROLE_ADMIN}
    ga = roles[GLOBAL_ADMIN]
    assert ga["displayName"] == "Global Administrator" and ga["description"] and ga["id"] != GLOBAL_ADMIN
    assert set(ga) >= {"id", "displayName", "roleTemplateId", "description"}

    members = g.all_pages(f"/directoryRoles/{ga['id']}/members?$select=id,displayName,department,jobTitle")
    assert len(members) == 2
    assert all(m["@odata.type"] == "#microsoft.graph.user" and m["department"] == "IT" for m in members)
    by_template = g.all_pages(f"/directoryRoles/roleTemplateId={GLOBAL_ADMIN}/members?$select=id")
    assert sorted(m["id"] for m in by_template) == sorted(m["id"] for m in members)
    assert len(g.all_pages(f"/directoryRoles/{roles[USER_ADMIN]['id']}/members")) == 2
    assert len(g.all_pages(f"/directoryRoles/{roles[PRIVILEGED_ROLE_ADMIN]['id']}/members")) == 1
    # Role holders are distinct people, and real users of the tenant.
    holders = [m["id"] for t in roles.values() for m in g.all_pages(f"/directoryRoles/{t['id']}/members")]
    assert len(set(holders)) == 5
    assert g.get(f"/users/{holders[0]}").status_code == 200

    one = g.get(f"/directoryRoles/{ga['id']}?$select=displayName,roleTemplateId").json()
    assert one["displayName"] == "Global Administrator" and one["roleTemplateId"] == GLOBAL_ADMIN
    missing = g.get("/directoryRoles/00000000-0000-0000-0000-000000000000/members")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "Request_ResourceNotFound"


def test_directory_roles_are_per_tenant_deterministic_and_survive_a_restart(make_sandbox, tmp_path, graph):
    seed_file = tmp_path / "small.yaml"
    seed_file.write_text(SMALL_SEED)
    sb = make_sandbox(seed=str(seed_file), throttle="off")

    def snapshot(tenant: str) -> dict[str, list[str]]:
        g = graph(sb, tenant)
        return {role["roleTemplateId"]: sorted(m["id"] for m in g.all_pages(f"/directoryRoles/{role['id']}/members"))
                for role in g.get("/directoryRoles").json()["value"]}

    before = {t: snapshot(t) for t in ("alpha", "beta")}
    assert before["alpha"][GLOBAL_ADMIN] != before["beta"][GLOBAL_ADMIN]
    assert len(before["alpha"][GLOBAL_ADMIN]) == 2
    sb.restart()
    assert {t: snapshot(t) for t in ("alpha", "beta")} == before
    # The same seed yields the same role ids and holders.
    seeded = generate_tenant("alpha", 40, seed=0, sync_groups=["Beta"])
    ga = next(r for r in seeded.directory_roles if r["roleTemplateId"] == GLOBAL_ADMIN)
    assert sorted(m for r, m in seeded.role_members if r == ga["id"]) == before["alpha"][GLOBAL_ADMIN]


# ---- injected Retry-After ----------------------------------------------------------------------
def test_retry_after_is_part_of_the_fault_grammar_and_layers():
    spec = FaultSpec.parse("429=1,retry_after=7;tenant=beta,retry_after=2")
    assert FaultInjector(spec, 0).decide("alpha", "read").retry_after_s == 7
    assert FaultInjector(spec, 0).decide("beta", "write").retry_after_s == 2
    assert FaultInjector("503=1", 0).decide("alpha", "read").retry_after_s == 1  # default: Graph's 1 s
    for bad in ("429=1,retry_after=0", "retry_after=1.5", "retry_after=-1", "retry_after=x"):
        with pytest.raises(FaultSpecError, match="retry_after"):
            FaultSpec.parse(bad)


def test_injected_429_and_503_carry_the_configured_retry_after(small, graph):
    g = graph(small, "alpha")
    small.admin("PUT", "faults", json={"spec": "kind=read,429=1,retry_after=5;kind=write,503=1", "seed": 1})
    r = g.get("/users?$top=1")
    assert r.status_code == 429 and r.headers["Retry-After"] == "5"
    w = g.patch("/users/nobody", json={"jobTitle": "x"})
    assert w.status_code == 503 and w.headers["Retry-After"] == "1"
    assert small.admin("GET", "state")["faults"] == "kind=read,429=1,retry_after=5;kind=write,503=1"


# ---- CLI: bad input is one line and exit 2 -----------------------------------------------------
def _xts(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xts_pipeline.cli", "sandbox", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


def _one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize(("args", "fragments"), [
    (["--tenant", "Bad_Name", "--users", "5"], ["'Bad_Name'"]),
    (["--tenant", "ok", "--users", "0"], ["'ok'", "users"]),
    (["--tenant", "ok", "--users", "5", "--domain", "not a domain"], ["'ok'", "domain"]),
])
def test_seed_bad_input_is_one_line(tmp_path, args, fragments):
    _one_line_error(_xts("seed", "--state", str(tmp_path / "s"), *args), "xts sandbox seed:", *fragments)


def test_seed_into_a_file_or_twice_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    _one_line_error(_xts("seed", "--state", str(blocker), "--tenant", "ok", "--users", "3"), "--state")
    assert _xts("seed", "--state", str(tmp_path / "s"), "--tenant", "ok", "--users", "3").returncode == 0
    _one_line_error(_xts("seed", "--state", str(tmp_path / "s"), "--tenant", "ok", "--users", "3"),
                    "'ok'", "already exists")


@pytest.mark.parametrize(("args", "fragments"), [
    (["--host", "10.1.2.3"], ["--host", "loopback"]),
    (["--host", "example.com"], ["--host"]),
    (["--seed", "no-such-seed.yaml"], ["--seed", "no-such-seed.yaml"]),
    (["--faults", "429=2"], ["--faults", "429"]),
    (["--faults", "tenant=a,bogus=1"], ["--faults", "bogus"]),
    (["--faults", "retry_after=0"], ["--faults", "retry_after"]),
    (["--port", "70000"], ["--port"]),
    (["--time-scale", "0"], ["--time-scale"]),
])
def test_serve_bad_input_is_one_line_and_touches_nothing(tmp_path, args, fragments):
    state = tmp_path / "state"
    _one_line_error(_xts("serve", "--state", str(state), *args), "xts sandbox serve:", *fragments)
    assert not state.exists()  # flags are checked before the state dir is created


def test_serve_with_a_broken_seed_file_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("tenants: 3\n")
    _one_line_error(_xts("serve", "--state", str(tmp_path / "state"), "--seed", str(bad)), "--seed", "bad.yaml")
