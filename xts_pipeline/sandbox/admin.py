"""Sandbox-only admin routes under /_sandbox/ (header X-Sandbox-Admin: <admin_key>), for tests and demos.

They change what Graph cannot (app permissions, invitation policy, groups, faults, throttle, the clock)
and expose raw state for assertions. See docs/sandbox.md.
"""

from __future__ import annotations

import re
import secrets
from typing import TYPE_CHECKING

import orjson
from starlette.requests import Request
from starlette.responses import Response

from .store import ACTIVE, Tenant

if TYPE_CHECKING:
    from .app import SandboxApp

_SECRET_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.~"  # noqa: S105
_SECRET_RE = re.compile(r"[\x21-\x7e]{1,256}\Z")  # printable ASCII, no spaces: what an Entra secret can be


def _json(obj, status: int = 200) -> Response:
    return Response(orjson.dumps(obj), status, media_type="application/json")


def _err(status: int, message: str) -> Response:
    return _json({"error": {"code": "SandboxAdmin", "message": message}}, status)


async def handle_admin(app: SandboxApp, request: Request) -> Response:
    if not app.check_admin(request):
        return _err(401, "Missing or wrong X-Sandbox-Admin header: use admin_key from sandbox.json.")
    path = "/" + request.path_params["path"].strip("/")
    method = request.method
    body: dict = {}
    if method in ("PUT", "POST", "PATCH"):
        raw = await request.body()
        try:
            body = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            return _err(400, f"{method} {request.url.path}: the body is not JSON.")
        if not isinstance(body, dict):
            return _err(400, f"{method} {request.url.path}: the body must be a JSON object.")
    store = app.store

    if path == "/state" and method == "GET":
        return _json({"tenants": store.counts(), "throttle": app.throttle_mode, "faults": app.fault_spec,
                      "fault_seed": app.fault_seed,
                      "clock": {"now": app.clock.iso_now(), "epoch": app.clock.now(),
                                "time_scale": app.clock.time_scale}})
    if path == "/throttle" and method == "PUT":
        try:
            app.set_throttle(body.get("mode", "off"))
        except ValueError as exc:
            return _err(400, str(exc))
        return _json({"throttle": app.throttle_mode})
    if path == "/faults" and method == "PUT":
        try:
            app.set_faults(body.get("spec"), int(body.get("seed", 0)))
        except ValueError as exc:
            return _err(400, f"fault spec rejected: {exc}")
        return _json({"faults": app.fault_spec, "fault_seed": app.fault_seed})
    if path == "/clock/advance" and method == "POST":
        try:
            now = app.clock.advance(float(body.get("seconds", 0)))
        except (TypeError, ValueError) as exc:
            return _err(400, f"clock advance: {exc}")
        store.meta_set("clock", app.clock.export())
        return _json({"now": app.clock.iso_now(), "epoch": now})

    m = re.match(r"^/tenants/([^/]+)(/.*)?$", path)
    if not m:
        return _err(404, f"No admin route {method} {request.url.path}; see docs/sandbox.md.")
    tenant = store.find_tenant(m.group(1))
    if tenant is None:
        return _err(404, f"Tenant '{m.group(1)}' is not in this sandbox; use a name, id or domain from "
                    "sandbox.json.")
    rest = m.group(2) or "/"
    if rest == "/permissions" and method == "PUT":
        perms = body.get("permissions")
        if not isinstance(perms, list) or not all(isinstance(p, str) for p in perms):
            return _err(400, "Body must be {\"permissions\": [\"User.Read.All\", ...]}.")
        store.set_permissions(tenant, perms)
        return _json({"tenant": tenant.name, "permissions": tenant.permissions})
    if rest == "/secret" and method == "PUT":
        return _put_secret(app, tenant, body)
    if rest == "/invitations" and method == "PUT":
        if not isinstance(body.get("allowed"), bool):
            return _err(400, "Body must be {\"allowed\": true|false}.")
        store.set_allow_invitations(tenant, body["allowed"])
        return _json({"tenant": tenant.name, "allow_invitations": tenant.allow_invitations})
    if rest == "/users" and method == "GET":
        include = request.query_params.get("include_deleted", "false").lower() == "true"
        return _json({"tenant": tenant.name, "value": store.raw_users(tenant, include)})
    um = re.match(r"^/users/([^/]+)$", rest)
    if um and method == "PATCH":
        row = store.get_user_row(tenant, um.group(1), states=(ACTIVE,))
        if row is None:
            return _err(404, f"User '{um.group(1)}' is not an active user of tenant '{tenant.name}'.")
        store.update_user(tenant, row[0], body)  # raw: bypasses Graph's validation on purpose
        return _json(store.get_user(tenant, row[0]))
    rm = re.match(r"^/directoryRoles/([^/]+)/members$", rest)
    if rm and method == "POST":
        # Role holders that are not users (a role-assignable group, a service principal), or a user by id.
        role = store.get_directory_role(tenant, rm.group(1))
        kind = body.get("type", "user")
        if role is None or kind not in ("user", "group", "servicePrincipal"):
            return _err(400, "Body must be {\"type\": \"user\"|\"group\"|\"servicePrincipal\", \"id\"?, "
                        "\"displayName\"?} for an activated role (object id or roleTemplateId=...).")
        member = store.add_role_member(tenant, role["id"], kind, body.get("id"), body.get("displayName"))
        return _json(member)
    gm = re.match(r"^/groups/([^/]+)(/members)?$", rest)
    if gm and method == "PUT":
        return _put_group(app, tenant, gm.group(1), body, members=bool(gm.group(2)))
    if rest == "/partners" and method == "GET":
        return _json({"tenant": tenant.name, "value": store.list_partners(tenant)})
    pm = re.match(r"^/partners/([^/]+)$", rest)
    if pm and method == "PUT":
        store.put_partner(tenant, pm.group(1), body)
        return _json(body)
    return _err(404, f"No admin route {method} {request.url.path}; see docs/sandbox.md.")


def _put_group(app: SandboxApp, tenant: Tenant, group_id: str, body: dict, members: bool) -> Response:
    """PUT /_sandbox/tenants/{t}/groups/{id}[/members]: upsert a group, or replace its direct members.

    Graph's group writes are not part of the sandbox; tests need groups to change (a new group, a new
    membershipRule, a role-assignable group's members) to see that a snapshot and the change probe notice.
    """
    store = app.store
    if not members:
        if "id" in body and body["id"] != group_id:
            return _err(400, f"The body's id {body['id']!r} is not the group id in the path ({group_id!r}).")
        return _json(store.put_group(tenant, group_id, body))
    ids = body.get("ids")
    if set(body) != {"ids"} or not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        return _err(400, 'Body must be {"ids": ["<member object id>", ...]}.')
    if store.get_group(tenant, group_id) is None:
        return _err(404, f"Group '{group_id}' is not in tenant '{tenant.name}'.")
    unknown = [i for i in ids if store.get_user_row(tenant, i) is None]
    if unknown:
        return _err(400, f"Not active users of tenant '{tenant.name}': {', '.join(unknown)}.")
    store.set_group_members(tenant, group_id, ids)
    return _json({"id": group_id, "members": ids})


def new_client_secret() -> str:
    """A fresh random secret in Entra's shape (3 letters, a digit, 'Q~', 34 more): what rotation hands out."""
    letters = _SECRET_ALPHABET[:52]
    head = "".join(secrets.choice(letters) for _ in range(3)) + secrets.choice("0123456789")
    return head + "Q~" + "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(34))


def _put_secret(app: SandboxApp, tenant: Tenant, body: dict) -> Response:
    """PUT /_sandbox/tenants/{t}/secret: rotate the app's secret or set a given one (e.g. to break it).

    Entra would let an app hold several secrets; the sandbox keeps one, so the old secret fails at once
    (AADSTS7000215) while access tokens already issued stay valid until they expire, as in Entra.
    sandbox.json is rewritten (mode 0600), so a client that re-reads it picks the new secret up.
    """
    usage = 'Body must be {"rotate": true} or {"secret": "<1-256 printable ASCII characters, no spaces>"}.'
    if set(body) - {"rotate", "secret"} or ("rotate" in body) == ("secret" in body):
        return _err(400, usage)
    if "rotate" in body:
        if body["rotate"] is not True:
            return _err(400, usage)
        secret = new_client_secret()
    else:
        secret = body["secret"]
        if not isinstance(secret, str) or not _SECRET_RE.match(secret):
            return _err(400, usage)
    app.store.set_client_secret(tenant, secret)
    if app.on_tenants_changed is not None:
        app.on_tenants_changed()
    return _json({"tenant": tenant.name, "client_id": tenant.client_id, "client_secret": secret})
