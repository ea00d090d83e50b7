"""GET /organization: the tenant itself and its one verified domain."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..wire import GraphRequest, GraphResponse, _ok
from .common import _context

if TYPE_CHECKING:
    from ..app import SandboxApp


def get_organization(app: SandboxApp, req: GraphRequest, base: str) -> GraphResponse:
    t = req.tenant
    org = {"id": t.tenant_id, "displayName": t.name, "verifiedDomains": [
        {"capabilities": "Email, OfficeCommunicationsOnline", "isDefault": True, "isInitial": True,
         "name": t.domain, "type": "Managed"}]}
    return _ok({"@odata.context": _context(base, "organization"), "value": [org]})
