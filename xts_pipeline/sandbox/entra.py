"""The Entra side of the sandbox: OpenID configuration, signing keys and the token endpoint per tenant.

One host serves every tenant like Microsoft's authority does; the tenant is the first path segment
(id or domain). Token minting and checking are in tokens.py; this module only speaks HTTP.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote

import orjson
from starlette.requests import Request
from starlette.responses import Response

from .tokens import TOKEN_LIFETIME_S, client_credentials, entra_error

if TYPE_CHECKING:
    from .app import SandboxApp


async def openid_configuration(app: SandboxApp, request: Request) -> Response:
    """The tenant's OpenID configuration, so msal (which reads it first) finds the token endpoint."""
    key = request.path_params["tenant"]
    tenant = app.find_tenant(key)
    now = app.clock.now()
    if tenant is None:
        body = entra_error("invalid_tenant", 90002, f"Tenant '{key}' not found. Use a tenant id or domain "
                           "listed in sandbox.json.", now)
        return Response(orjson.dumps(body), 400, media_type="application/json")
    base, tid = app.base_for(request), tenant.tenant_id
    doc = {
        "token_endpoint": f"{base}/{tid}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "jwks_uri": f"{base}/{tid}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{base}/{tid}/v2.0",
        "authorization_endpoint": f"{base}/{tid}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{base}/{tid}/oauth2/v2.0/devicecode",
        "end_session_endpoint": f"{base}/{tid}/oauth2/v2.0/logout",
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "msgraph_host": "graph.microsoft.com",
    }
    return Response(orjson.dumps(doc), 200, media_type="application/json")

async def jwks(app: SandboxApp, request: Request) -> Response:
    """The public keys tokens are signed with."""
    return Response(orjson.dumps(app.signer.jwks()), 200, media_type="application/json")

async def token_endpoint(app: SandboxApp, request: Request) -> Response:
    """Client credentials grant: a secret in the form or in HTTP Basic, as Entra accepts both."""
    key = request.path_params["tenant"]
    raw = await request.body()
    try:  # application/x-www-form-urlencoded, parsed by the stdlib (no python-multipart needed)
        form = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        form = {}
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("basic ") and "client_secret" not in form:
        try:
            cid, _, sec = base64.b64decode(auth[6:]).decode().partition(":")
            form.setdefault("client_id", unquote(cid))
            form["client_secret"] = unquote(sec)
        except (ValueError, UnicodeDecodeError):
            pass
    tenant = app.find_tenant(key)
    now = app.clock.now()
    status, body = client_credentials(form, tenant, app.signer, now,
                                      issuer=f"https://sts.windows.net/{tenant.tenant_id if tenant else key}/",
                                      tenant_key=key)
    if status == 200:
        # expires_in is in wall-clock seconds, so clients refresh on the sandbox clock's schedule.
        body["expires_in"] = body["ext_expires_in"] = max(1, int(TOKEN_LIFETIME_S / app.clock.time_scale))
    return Response(orjson.dumps(body), status, {"Cache-Control": "no-store, no-cache"},
                    media_type="application/json")
