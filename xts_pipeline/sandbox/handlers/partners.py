"""/policies/crossTenantAccessPolicy/partners and each partner's identitySynchronization."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..wire import GraphError, GraphRequest, GraphResponse, _no_content, _ok
from .common import _context, _entity, _not_found

if TYPE_CHECKING:
    from ..app import SandboxApp


def default_partner(partner_id: str) -> dict:
    return {"tenantId": partner_id, "isServiceProvider": None, "isInMultiTenantOrganization": False,
            "inboundTrust": None, "b2bCollaborationOutbound": None, "b2bCollaborationInbound": None,
            "b2bDirectConnectOutbound": None, "b2bDirectConnectInbound": None, "tenantRestrictions": None,
            "automaticUserConsentSettings": {"inboundAllowed": False, "outboundAllowed": False}}


def _partner_view(data: dict) -> dict:
    return {k: v for k, v in data.items() if k != "identitySynchronization"}


def list_partners(app: SandboxApp, req: GraphRequest, base: str) -> GraphResponse:
    items = [_partner_view(p) for p in app.store.list_partners(req.tenant)]
    return _ok({"@odata.context": _context(base, "policies/crossTenantAccessPolicy/partners"), "value": items})


def get_partner(app: SandboxApp, req: GraphRequest, base: str, pid: str) -> GraphResponse:
    data = app.store.get_partner(req.tenant, pid)
    if data is None:
        raise _not_found(pid)
    return _ok(_entity(base, "policies/crossTenantAccessPolicy/partners/$entity", _partner_view(data)))


def patch_partner(app: SandboxApp, req: GraphRequest, base: str, pid: str) -> GraphResponse:
    body = req.json()
    data = app.store.get_partner(req.tenant, pid)
    if data is None:
        raise _not_found(pid)
    allowed = set(default_partner(pid)) - {"tenantId"}
    for k in body:
        if k not in allowed:
            raise GraphError(400, "Request_BadRequest", f"Invalid property '{k}' on crossTenantAccessPolicy"
                             "ConfigurationPartner.")
    data.update(body)
    app.store.put_partner(req.tenant, pid, data)
    return _no_content()


def get_identity_sync(app: SandboxApp, req: GraphRequest, base: str, pid: str) -> GraphResponse:
    data = app.store.get_partner(req.tenant, pid)
    sync = (data or {}).get("identitySynchronization")
    if sync is None:
        raise _not_found(f"{pid}/identitySynchronization")
    ctx = f"policies/crossTenantAccessPolicy/partners('{pid}')/identitySynchronization/$entity"
    return _ok(_entity(base, ctx, sync))


def put_identity_sync(app: SandboxApp, req: GraphRequest, base: str, pid: str) -> GraphResponse:
    body = req.json()
    inbound = body.get("userSyncInbound")
    if not isinstance(inbound, dict) or not isinstance(inbound.get("isSyncAllowed"), bool):
        raise GraphError(400, "Request_BadRequest", "userSyncInbound.isSyncAllowed (true or false) is required.")
    data = app.store.get_partner(req.tenant, pid) or default_partner(pid.lower())
    data["identitySynchronization"] = {"tenantId": pid.lower(), "displayName": body.get("displayName"),
                                       "userSyncInbound": {"isSyncAllowed": inbound["isSyncAllowed"]}}
    app.store.put_partner(req.tenant, pid, data)
    return _no_content()
