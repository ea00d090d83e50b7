"""The sandbox's ASGI app: Starlette wiring, the Graph request path (auth, permissions, throttling, faults,
dispatch, errors) and the server's runtime state.

The Entra endpoints are in entra.py, the Graph route table in routes.py with one handler module per
resource in handlers/, `$batch` in batch.py, the admin routes in admin.py, replication lag in lag.py and
the paging tokens in page_tokens.py. Graph handlers are plain
functions over a `GraphRequest` so `$batch` runs each sub-request through exactly the same path
(`execute`) as a top-level request.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import entra
from .batch import run_batch
from .clock import SandboxClock
from .faults import FaultInjector, FaultSpec
from .lag import ReplicationLag
from .odata import ODataError
from .page_tokens import PageTokens
from .routes import GraphRoute, graph_routes, match_route, path_ids
from .store import DEFAULT_USER_PROPS, SandboxStore, Tenant
from .throttle import Throttler, request_cost
from .tokens import TokenClaims, TokenError, TokenSigner
from .wire import (  # the types and shapes handlers share; GROUP_PROPS and USER_PROPS re-exported
    GROUP_PROPS,
    USER_PROPS,
    GraphError,
    GraphRequest,
    GraphResponse,
    error_body,
    parse_query,
)


def effective_permissions(token_roles: list[str], granted: list[str]) -> set[str]:
    """Roles in the token that the app still holds, so an admin revoke bites before the token expires."""
    return set(token_roles) & set(granted)


class SandboxApp:
    """State + behaviour of one sandbox server. `asgi` is the Starlette application."""

    def __init__(self, store: SandboxStore, clock: SandboxClock, signer: TokenSigner, admin_key: str,
                 throttle: str = "off", faults: str | None = None, fault_seed: int = 0,
                 base_url: str = "") -> None:
        self.store, self.clock, self.signer = store, clock, signer
        self._admin_key = admin_key
        self.base_url = base_url
        self.page_tokens = PageTokens(hashlib.sha256(b"xts-token-key:" + admin_key.encode()).digest())
        self._verified: dict[str, TokenClaims] = {}
        self.on_tenants_changed: Callable[[], None] | None = None  # server rewrites sandbox.json
        self.set_throttle(throttle)
        self.set_faults(faults, fault_seed)
        self.routes: list[GraphRoute] = graph_routes()
        self.asgi = self._build_starlette()

    def __repr__(self) -> str:
        return f"SandboxApp(base_url={self.base_url!r}, tenants={len(self.store.tenants)})"

    # ---- runtime configuration ----------------------------------------------------------------
    def set_throttle(self, mode: str) -> None:
        if mode not in ("documented", "off"):
            raise ValueError(f"throttle mode {mode!r} is not known; use 'documented' or 'off'")
        self.throttle_mode = mode
        self.throttler = Throttler(self.clock.now, mode, self.clock.time_scale)

    def set_faults(self, spec: str | None, seed: int = 0) -> None:
        self.fault_spec, self.fault_seed = spec or "", int(seed)
        self.injector = FaultInjector(FaultSpec.parse(spec), seed) if spec else None
        self.lag = ReplicationLag(self.injector)

    # ---- replication lag (lag.py) and paging tokens (page_tokens.py), used by the handlers ---------
    def note_write(self, tenant: Tenant, user_id: str, created: bool = False) -> None:
        self.lag.note_write(tenant, user_id, created)

    def lagging(self, tenant: Tenant, user_id: str, writes: bool = False) -> bool:
        return self.lag.lagging(tenant, user_id, writes)

    def lag_filter(self, tenant: Tenant) -> Callable[[str], bool] | None:
        return self.lag.filter(tenant)

    def encode_token(self, state: dict) -> str:
        return self.page_tokens.encode(state)

    def decode_token(self, token: str) -> dict | None:
        return self.page_tokens.decode(token)

    # ---- Starlette wiring ----------------------------------------------------------------------
    def _build_starlette(self) -> Starlette:
        all_methods = ["GET", "POST", "PATCH", "PUT", "DELETE"]
        routes = [
            Route("/{tenant}/v2.0/.well-known/openid-configuration", self.openid_configuration),
            Route("/{tenant}/oauth2/v2.0/token", self.token_endpoint, methods=["POST"]),
            Route("/{tenant}/discovery/v2.0/keys", self.jwks),
            Route("/v1.0/{path:path}", self.graph_endpoint, methods=all_methods),
            Route("/_sandbox/{path:path}", self.admin_endpoint, methods=all_methods),
            Route("/{path:path}", self.not_found, methods=all_methods),
        ]
        return Starlette(routes=routes, exception_handlers={
            HTTPException: self._http_exception, Exception: self._unhandled})

    def _error_response(self, status: int, code: str, message: str, headers: dict | None = None,
                        request_id: str | None = None, client_request_id: str | None = None) -> Response:
        rid = request_id or str(uuid.uuid4())
        crid = client_request_id or rid
        h = {"request-id": rid, "client-request-id": crid, **(headers or {})}
        return Response(error_body(code, message, rid, crid, self.clock.now()), status, h,
                        media_type="application/json")

    async def _http_exception(self, request: Request, exc: HTTPException) -> Response:
        code = {404: "Request_ResourceNotFound", 405: "Request_BadRequest"}.get(exc.status_code, "BadRequest")
        return self._error_response(exc.status_code, code, f"{exc.detail} ({request.method} {request.url.path})")

    async def _unhandled(self, request: Request, exc: Exception) -> Response:
        # Never a stack trace on the wire: the class name is enough to find it in the server log.
        return self._error_response(500, "InternalServerError",
                                    f"The sandbox failed on {request.method} {request.url.path} "
                                    f"({type(exc).__name__}). See the sandbox log in the state directory.")

    async def not_found(self, request: Request) -> Response:
        return self._error_response(400, "BadRequest", f"Resource not found for the segment "
                                    f"'{request.url.path.strip('/').split('/')[0]}'. Graph routes live under "
                                    "/v1.0/, Entra routes under /{tenant}/oauth2/v2.0/.")

    # ---- tenants and hosts -----------------------------------------------------------------------
    def base_for(self, request: Request) -> str:
        """The public base URL: the configured one, else the host the client reached."""
        return self.base_url or f"https://{request.url.netloc}"

    def find_tenant(self, key: str) -> Tenant | None:
        """By id/domain/name; on a miss, re-read tenants another process may have seeded."""
        tenant = self.store.find_tenant(key)
        if tenant is None and self.store.reload_if_changed():
            self._verified.clear()
            if self.on_tenants_changed is not None:
                self.on_tenants_changed()
            tenant = self.store.find_tenant(key)
        return tenant

    # ---- Entra (entra.py) -------------------------------------------------------------------------
    async def openid_configuration(self, request: Request) -> Response:
        return await entra.openid_configuration(self, request)

    async def jwks(self, request: Request) -> Response:
        return await entra.jwks(self, request)

    async def token_endpoint(self, request: Request) -> Response:
        return await entra.token_endpoint(self, request)

    # ---- Graph entry point -----------------------------------------------------------------
    def _authenticate(self, headers) -> tuple[Tenant, TokenClaims]:
        auth = headers.get("authorization") or ""
        if not auth.lower().startswith("bearer ") or not auth[7:].strip():
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
        token = auth[7:].strip()
        now = self.clock.now()
        claims = self._verified.get(token)
        if claims is None:
            try:
                claims = self.signer.verify(token, now)
            except TokenError as exc:
                raise GraphError(401, "InvalidAuthenticationToken", str(exc)) from None
            if len(self._verified) > 10_000:
                self._verified.clear()
            self._verified[token] = claims
        elif claims.exp <= now:
            raise GraphError(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
        tenant = self.store.tenants.get(claims.tenant_id)
        if tenant is None or tenant.client_id != claims.app_id:
            raise GraphError(401, "InvalidAuthenticationToken",
                             "Access token validation failure: the token's tenant or app is not known to this "
                             "sandbox. Get a new token from the authority listed in sandbox.json.")
        return tenant, claims

    async def graph_endpoint(self, request: Request) -> Response:
        rid = str(uuid.uuid4())
        crid = request.headers.get("client-request-id") or rid
        try:
            tenant, claims = self._authenticate(request.headers)
        except GraphError as exc:
            return self._error_response(exc.status, exc.code, exc.message, request_id=rid, client_request_id=crid)
        body = await request.body()
        path = "/" + request.path_params["path"]
        raw_query = request.url.query
        greq = GraphRequest(request.method, path, parse_query(raw_query), dict(request.headers), body or None,
                            tenant, claims, rid, crid, raw_query)
        if path.rstrip("/").lower() == "/$batch" and request.method == "POST":
            resp = await run_batch(self, greq, self.base_for(request))
        else:
            resp = await self.execute(greq, self.base_for(request))
        if resp.reset:
            await self._reset_connection(request)
            return Response(b"", 500)  # unreachable when the transport could be aborted
        headers = {"request-id": rid, "client-request-id": crid, **resp.headers}
        if resp.body is not None:
            headers.setdefault("content-type", "application/json;odata.metadata=minimal;odata.streaming=true;"
                                               "IEEE754Compatible=false;charset=utf-8")
        return Response(resp.body if resp.body is not None else b"", resp.status, headers)

    async def _reset_connection(self, request: Request) -> None:
        """Drop the TCP connection without an answer (a 'reset' fault): the response is lost."""
        send = request.scope.get("xts.raw_send")
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if transport is not None:
            transport.abort()
            for _ in range(3):
                await asyncio.sleep(0)
        else:
            raise ConnectionAbortedError("fault injection: connection reset")

    async def execute(self, req: GraphRequest, base: str) -> GraphResponse:
        """One Graph call: throttle, fault, dispatch; errors become Graph error bodies."""
        now = self.clock.now()
        extra: dict[str, str] = {}
        fault = None
        ru, writes = request_cost(req.method, "/v1.0" + req.path, req.raw_query)
        try:
            route, match = match_route(self.routes, req)
            roles = effective_permissions(req.claims.roles, req.tenant.permissions)
            needed = route.permission
            if needed and not roles.intersection(needed):
                higher = f" (or a higher-privileged one: {', '.join(needed[1:])})" if len(needed) > 1 else ""
                raise GraphError(403, "Authorization_RequestDenied",
                                 f"Insufficient privileges to complete the operation. The app of tenant "
                                 f"'{req.tenant.name}' needs the application permission {needed[0]}{higher}.")
            decision = self.throttler.charge(req.tenant.tenant_id, req.claims.app_id, req.tenant.user_count,
                                             ru, writes)
            extra.update(decision.headers)
            if not decision.allowed:
                raise GraphError(429, "TooManyRequests",
                                 f"Too many requests for tenant '{req.tenant.name}' "
                                 f"({decision.information or 'throttled'}); retry after "
                                 f"{decision.retry_after_s} s.", decision.headers)
            if self.injector is not None:
                fault = self.injector.decide(req.tenant.name, "read" if req.method == "GET" else "write")
                if fault is not None:
                    if fault.latency_s:
                        await asyncio.sleep(fault.latency_s)
                    wait = str(max(1, int(fault.retry_after_s)))  # Graph sends whole seconds; never 0
                    if fault.kind == "429":
                        raise GraphError(429, "TooManyRequests", "Too many requests (injected fault). Retry after "
                                         f"{wait} s.", {"Retry-After": wait})
                    if fault.kind and fault.kind.isdigit():
                        code = {500: "InternalServerError", 502: "BadGateway", 503: "ServiceUnavailable",
                                504: "GatewayTimeout"}[int(fault.kind)]
                        hdr = {"Retry-After": wait} if fault.kind == "503" else {}
                        raise GraphError(int(fault.kind), code, f"Injected fault {fault.kind} for tenant "
                                         f"'{req.tenant.name}'.", hdr)
            resp = route.handler(self, req, base, *path_ids(match))
        except GraphError as exc:
            resp = GraphResponse(exc.status, error_body(exc.code, exc.message, req.request_id,
                                                        req.client_request_id, now), dict(exc.headers))
        except ODataError as exc:
            resp = GraphResponse(400, error_body(exc.code, str(exc), req.request_id, req.client_request_id, now))
        for k, v in extra.items():
            resp.headers.setdefault(k, v)
        resp.headers.setdefault("x-ms-resource-unit", str(ru))
        if fault is not None and fault.kind == "reset":
            resp.reset = True
        return resp

    # ---- admin routes --------------------------------------------------------------------------
    async def admin_endpoint(self, request: Request) -> Response:
        from .admin import handle_admin
        return await handle_admin(self, request)

    def check_admin(self, request: Request) -> bool:
        given = request.headers.get("x-sandbox-admin", "")
        return secrets.compare_digest(given.encode(), self._admin_key.encode())

def raw_asgi(app: SandboxApp):
    """Outermost ASGI callable: remembers the server's own `send` so a 'reset' fault can abort the socket."""
    inner = app.asgi

    async def asgi(scope, receive, send):
        if scope["type"] != "http":
            await inner(scope, receive, send)
            return
        scope["xts.raw_send"] = send

        async def send_with_request_id(message):
            if message["type"] == "http.response.start":
                headers = message.get("headers") or []
                if not any(k == b"request-id" for k, _ in headers):
                    message = {**message, "headers": [*headers, (b"request-id", str(uuid.uuid4()).encode())]}
            await send(message)

        await inner(scope, receive, send_with_request_id)

    return asgi


__all__ = ["DEFAULT_USER_PROPS", "GROUP_PROPS", "USER_PROPS", "GraphError", "GraphRequest", "GraphResponse",
           "SandboxApp", "effective_permissions", "error_body", "raw_asgi"]
