"""The sync app's own application object and its directory extension properties
(api/application-get.md, resources/extensionproperty.md)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .. import validation
from ..wire import GraphError, GraphRequest, GraphResponse, _ok
from .common import _context, _entity, _extensions

if TYPE_CHECKING:
    from ..app import SandboxApp


_EXT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,99}$")


def _own_app(req: GraphRequest, app_id: str) -> None:
    t = req.tenant
    if app_id.lower().startswith("appid="):  # applications(appId='...'): the client id
        if app_id.split("=", 1)[1].strip("'\"").lower() == t.client_id.lower():
            return
        raise GraphError(404, "Request_ResourceNotFound", f"Resource '{app_id}' does not exist or one of its "
                         "queried reference-property objects are not present.")
    if app_id.lower() not in (t.app_object_id.lower(),):
        raise GraphError(404, "Request_ResourceNotFound",
                         f"Resource '{app_id}' does not exist or one of its queried reference-property objects are "
                         f"not present. The app object id of tenant '{t.name}' is in sandbox.json "
                         "(app_object_id), not the client id.")


def get_application(app: SandboxApp, req: GraphRequest, base: str, app_id: str) -> GraphResponse:
    _own_app(req, app_id)
    t = req.tenant
    return _ok(_entity(base, "applications/$entity", {
        "id": t.app_object_id, "appId": t.client_id, "displayName": f"xts sync ({t.name})",
        "signInAudience": "AzureADMyOrg"}))


def list_extensions(app: SandboxApp, req: GraphRequest, base: str, app_id: str) -> GraphResponse:
    _own_app(req, app_id)
    exts = app.store.extensions(req.tenant, req.tenant.app_object_id)
    return _ok({"@odata.context": _context(base, f"applications('{app_id}')/extensionProperties"), "value": exts})


def create_extension(app: SandboxApp, req: GraphRequest, base: str, app_id: str) -> GraphResponse:
    _own_app(req, app_id)
    t = req.tenant
    body = req.json()
    name = body.get("name")
    if not isinstance(name, str) or not _EXT_NAME.fullmatch(name):
        raise GraphError(400, "Request_BadRequest", "Property 'name' is required and must be letters, digits or "
                         "underscores, starting with a letter.")
    data_type = body.get("dataType", "String")
    if data_type not in ("Binary", "Boolean", "DateTime", "Integer", "LargeInteger", "String"):
        raise GraphError(400, "Request_BadRequest", f"Invalid value specified for property 'dataType': "
                         f"'{data_type}'.")
    targets = body.get("targetObjects")
    # resources/extensionproperty.md: targetObjects is required ("Not nullable") and takes User, Group,
    # AdministrativeUnit, Application, Device, Organization.
    if not isinstance(targets, list) or not targets or not all(
            isinstance(x, str) and x in validation.EXTENSION_TARGETS for x in targets):
        raise GraphError(400, "Request_BadRequest", f"Invalid value specified for property 'targetObjects': "
                         f"{targets!r}; use a non-empty list of {', '.join(sorted(validation.EXTENSION_TARGETS))}.")
    if "isMultiValued" in body and not isinstance(body["isMultiValued"], bool):
        raise GraphError(400, "Request_BadRequest", "Invalid value specified for property 'isMultiValued'.")
    full = f"extension_{t.client_id.replace('-', '')}_{name}"
    if full in _extensions(app, t):
        raise GraphError(400, "Request_BadRequest", f"Property with name '{full}' already exists on application "
                         f"'{app_id}' of tenant '{t.name}'.")
    ext = app.store.register_extension(t, t.app_object_id, full, body)
    app.__dict__.setdefault("_ext_cache", {}).pop(t.tenant_id, None)
    return _ok(_entity(base, f"applications('{app_id}')/extensionProperties/$entity", ext), 201)
