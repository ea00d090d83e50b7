"""GraphClient: one tenant's authenticated, retrying HTTPS transport plus the read API.

Why here and not in reader.py: the transport (token, TLS, retries, error mapping) is shared by
the reader and the batch writer; reader.py holds the paging/delta logic as plain functions.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests

from . import reader
from .auth import TokenProvider
from .connection import TenantConnection
from .errors import (
    AuthError,
    DeltaTokenExpiredError,
    GraphError,
    NotFoundError,
    PermissionError_,
    ThrottledError,
    TlsError,
    UnreachableError,
    endpoint_of,
    parse_error_body,
    permission_hint,
)
from .http import make_session
from .odata import Filter
from .retry import RETRYABLE_STATUS, backoff_delay, parse_retry_after
from .urls import build_url, segment

__all__ = ["GraphClient"]

log = logging.getLogger("xts_pipeline.graph")

DELTA_EXPIRED_CODES = frozenset({"syncStateNotFound", "resyncRequired", "syncStateInvalid"})
TIMEOUT = (10.0, 120.0)  # (connect, read) seconds


def _check_session(session: requests.Session, tenant: str) -> None:
    """Refuse an injected session that would skip TLS verification or let REQUESTS_CA_BUNDLE & co. win."""
    if session.verify is False or session.trust_env:
        raise ValueError(
            f"tenant {tenant!r}: the requests.Session given to GraphClient has verify={session.verify!r}, "
            f"trust_env={session.trust_env!r}; use graph.http.make_session(ca_file) (TLS is always verified)"
        )


class GraphClient:
    """Talks to one tenant's Graph API. Thread-safe: the writer calls it from worker threads."""

    def __init__(
        self,
        conn: TenantConnection,
        *,
        session: requests.Session | None = None,
        pool_size: int = 16,
        max_attempts: int = 6,
        max_throttle_retries: int = 30,
        rng: random.Random | None = None,
    ) -> None:
        self.conn = conn
        if session is not None:
            _check_session(session, conn.name)
        self.session = session or make_session(conn.ca_file, pool_size=pool_size)
        self.tokens = TokenProvider(conn, self.session)
        self.max_attempts = max_attempts
        self.max_throttle_retries = max_throttle_retries
        self.rng = rng or random.Random()
        parts = urlsplit(conn.graph_url)
        self._graph_origin = f"{parts.scheme}://{parts.netloc}"

    def __repr__(self) -> str:
        return f"GraphClient(tenant={self.conn.name!r}, graph_url={self.conn.graph_url!r})"

    def close(self) -> None:
        """Close pooled connections (servers shut down faster without idle keep-alives)."""
        self.session.close()

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- transport
    def url(self, path: str) -> str:
        """Absolute URL for a Graph path; absolute URLs (nextLink/deltaLink) must be on the Graph host."""
        if path.startswith("https://") or path.startswith("http://"):
            if not path.startswith(self._graph_origin + "/"):
                raise GraphError(
                    self.conn.name, path, "refusing to send the token to a host other than graph_url",
                    fix=f"a nextLink/deltaLink must start with {self._graph_origin}; do not edit stored links",
                )
            return path
        return f"{self.conn.graph_url}/{path.lstrip('/')}"

    def send(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: tuple[float, float] = TIMEOUT,
    ) -> requests.Response:
        """One HTTP request with a bearer token; refreshes the token once on 401. No other retries.

        Raises TlsError / UnreachableError for transport failures (mapped from requests').
        Other `requests` connection errors propagate as ConnectionError subclasses for the caller's retry.
        """
        h = {"Accept": "application/json"}
        if headers:
            h.update(headers)
        data = None
        if json_body is not None:
            h["Content-Type"] = "application/json"
            data = orjson.dumps(json_body)
        for refresh in (False, True):
            h["Authorization"] = "Bearer " + self.tokens.token(force_refresh=refresh)
            try:
                resp = self.session.request(method, url, data=data, headers=h, timeout=timeout)
            except requests.exceptions.SSLError:
                raise TlsError(
                    self.conn.name, url, "TLS certificate verification failed", method=method,
                ) from None
            if resp.status_code != 401 or refresh:
                return resp
            resp.close()
        raise AssertionError("unreachable")  # pragma: no cover

    def error_for(self, method: str, url: str, resp: requests.Response) -> GraphError:
        """Map an HTTP error response to the right GraphError."""
        status, headers = resp.status_code, resp.headers
        try:
            body = orjson.loads(resp.content) if resp.content else None
        except orjson.JSONDecodeError:
            body = None
        code, message = parse_error_body(body)
        tenant = self.conn.name
        if status == 401:
            return AuthError(tenant, url, "Graph rejected the access token (401)", status=status, code=code,
                             graph_message=message, method=method,
                             fix="check that the app's token is issued for this tenant and Graph host")
        if status == 403:
            perm = permission_hint(method, url)
            return PermissionError_(tenant, url, f"access denied (403); the app likely lacks {perm}",
                                    status=status, code=code, graph_message=message, method=method,
                                    fix=f"grant the application permission {perm} and give admin consent")
        if status == 410 or (code in DELTA_EXPIRED_CODES):
            return DeltaTokenExpiredError(tenant, url, f"delta token expired or unknown ({status})",
                                          status=status, code=code, graph_message=message, method=method)
        if status == 404:
            return NotFoundError(tenant, url, "not found (404)", status=status, code=code,
                                 graph_message=message, method=method)
        if status == 429:
            ra = parse_retry_after(headers.get("Retry-After"))
            return ThrottledError(tenant, url, "throttled (429) beyond the retry budget", status=status,
                                  code=code, graph_message=message, method=method, retry_after=ra)
        return GraphError(tenant, url, f"HTTP {status}", status=status, code=code, graph_message=message,
                          method=method,
                          fix="retry later" if status >= 500 else "fix the request named here")

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """A read (or idempotent setup) call with retries; returns the parsed JSON body (or None)."""
        url = build_url(self.url(path), params)
        errors = throttles = 0
        while True:
            try:
                resp = self.send(method, url, json_body=json_body, headers=headers)
            except requests.exceptions.RequestException as exc:
                errors += 1
                if errors >= self.max_attempts:
                    raise UnreachableError(self.conn.name, url, f"no response after {errors} attempts "
                                           f"({type(exc).__name__})", method=method) from None
                delay = backoff_delay(errors, rng=self.rng)
                log.info("tenant %s: %s %s failed (%s); retry in %.1fs", self.conn.name, method,
                         endpoint_of(url), type(exc).__name__, delay)
                time.sleep(delay)
                continue
            if resp.status_code < 300:
                return orjson.loads(resp.content) if resp.content else None
            if resp.status_code in RETRYABLE_STATUS:
                if resp.status_code == 429:
                    throttles += 1
                    exhausted = throttles >= self.max_throttle_retries
                    delay = parse_retry_after(resp.headers.get("Retry-After"))
                    if delay is None:
                        delay = backoff_delay(throttles, rng=self.rng)
                else:
                    errors += 1
                    exhausted = errors >= self.max_attempts
                    delay = backoff_delay(errors, rng=self.rng)
                if not exhausted:
                    log.info("tenant %s: %s %s -> %s; retry in %.1fs", self.conn.name, method,
                             endpoint_of(url), resp.status_code, delay)
                    resp.close()
                    time.sleep(delay)
                    continue
            raise self.error_for(method, url, resp)

    def iter_pages(self, path: str, params: Mapping[str, Any] | None = None,
                   headers: Mapping[str, str] | None = None) -> Iterator[dict[str, Any]]:
        """Raw pages (whole response bodies), following @odata.nextLink verbatim."""
        url: str | None = path
        first = True
        while url:
            body = self.request("GET", url, params=params if first else None, headers=headers)
            first = False
            yield body or {}
            url = (body or {}).get("@odata.nextLink")

    # ---------------------------------------------------------------- reads (contract)
    def iter_users(self, select: Iterable[str], filter: str | Filter | None = None, top: int = 999,
                   advanced: bool | None = None, expand: str | None = None) -> Iterator[list[dict[str, Any]]]:
        """Users, one page (list of dicts) at a time; `expand` e.g. reader.MANAGER_EXPAND."""
        return reader.iter_users(self, select, filter, top, advanced, expand)

    def delta_users(self, select: Iterable[str], delta_link: str | None = None,
                    expand: str | None = None) -> reader.DeltaRound:
        """A delta round; iterate it for pages, then read `.delta_link` and `.resynced`."""
        return reader.DeltaRound(self, list(select), delta_link, expand=expand)

    def latest_users_delta_link(self, select: Iterable[str]) -> str:
        """A users delta link from now on ($deltatoken=latest): what changes after this call, nothing before."""
        return reader.latest_users_delta_link(self, select)

    def iter_groups(self, select: Iterable[str], filter: str | Filter | None = None,
                    top: int = 999) -> Iterator[list[dict[str, Any]]]:
        return reader.iter_groups(self, select, filter, top)

    def iter_group_members(self, group_id: str, select: Iterable[str] = ("id",),
                           top: int = 999) -> Iterator[list[dict[str, Any]]]:
        return reader.iter_group_members(self, group_id, select, top)

    def iter_directory_roles(self) -> Iterator[list[dict[str, Any]]]:
        return reader.iter_directory_roles(self)

    def iter_role_members(self, role_id: str, select: Iterable[str] = ("id",)) -> Iterator[list[dict[str, Any]]]:
        return reader.iter_role_members(self, role_id, select)

    def verified_domains(self) -> list[dict[str, Any]]:
        return reader.verified_domains(self)

    def partner_sync_policy(self, partner_tenant_id: str) -> dict[str, Any] | None:
        return reader.partner_sync_policy(self, partner_tenant_id)

    def ensure_extensions(self, app_object_id: str, names: Iterable[str]) -> dict[str, str]:
        return reader.ensure_extensions(self, app_object_id, names)

    def registered_extensions(self, app_object_id: str) -> set[str]:
        return reader.registered_extensions(self, app_object_id)

    def find_users(self, filter: str | Filter, select: Iterable[str] = ("id",),
                   limit: int = 1000) -> list[dict[str, Any]]:
        return reader.find_users(self, filter, select, limit)


__all__ += ["segment", "build_url", "DeltaTokenExpiredError"]
