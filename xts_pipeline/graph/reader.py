"""Reads: streamed paging, delta rounds with automatic resync, groups, members, partner policy.

Why generators of pages: a 100,000-user tenant must never sit in memory as one list of dicts; the
caller writes each page to DuckDB and drops it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from .errors import DeltaTokenExpiredError, GraphError, NotFoundError
from .odata import Filter, needs_advanced, prop
from .urls import segment

if TYPE_CHECKING:
    from .client import GraphClient

__all__ = ["DeltaRound", "iter_users", "iter_groups", "iter_group_members", "iter_directory_roles",
           "iter_role_members", "partner_sync_policy", "verified_domains", "ensure_extensions", "registered_extensions", "find_users",
           "EXTENSION_PREFIX"]

EXTENSION_PREFIX = "extension_"
# Each user's manager in the same page of the users list (+1 RU per request). Plain: the directory does not
# apply query options nested in $expand on directory objects. users/delta takes no $expand at all: it
# tracks the manager when `manager` is in $select and reports it as a `manager@delta` annotation
# (concepts/delta-query-overview.md).
MANAGER_EXPAND = "manager"
MANAGER_SELECT = "manager"
ADVANCED_HEADERS = {"ConsistencyLevel": "eventual"}


def _select(select: Iterable[str]) -> str:
    names = [prop(s) for s in select]
    if not names:
        raise ValueError("select must name at least one property; Graph returns a default set otherwise")
    return ",".join(dict.fromkeys(names))


def _list_params(select: Iterable[str], filter: str | Filter | None, top: int,
                 advanced: bool | None) -> tuple[dict[str, Any], dict[str, str] | None]:
    if not 1 <= top <= 999:
        raise ValueError(f"top={top} is outside Graph's 1..999 page size")
    params: dict[str, Any] = {"$select": _select(select), "$top": top}
    text = str(filter) if filter is not None else None
    if text:
        params["$filter"] = text
    if advanced is None:
        advanced = needs_advanced(text)
    headers = None
    if advanced:
        params["$count"] = "true"
        headers = ADVANCED_HEADERS
    return params, headers


def _pages(client: GraphClient, path: str, params: dict[str, Any],
           headers: dict[str, str] | None) -> Iterator[list[dict[str, Any]]]:
    for body in client.iter_pages(path, params, headers):
        yield body.get("value", [])


def iter_users(client: GraphClient, select: Iterable[str], filter: str | Filter | None = None,
               top: int = 999, advanced: bool | None = None,
               expand: str | None = None) -> Iterator[list[dict[str, Any]]]:
    """GET /users with $select/$filter/$top; advanced queries add ConsistencyLevel + $count.

    `expand` (e.g. MANAGER_EXPAND) reads a reference in the same page instead of one request per user.
    """
    params, headers = _list_params(select, filter, top, advanced)
    if expand:
        params["$expand"] = expand
    return _pages(client, "users", params, headers)


def iter_groups(client: GraphClient, select: Iterable[str], filter: str | Filter | None = None,
                top: int = 999) -> Iterator[list[dict[str, Any]]]:
    """GET /groups, page by page."""
    params, headers = _list_params(select, filter, top, None)
    return _pages(client, "groups", params, headers)


def iter_group_members(client: GraphClient, group_id: str, select: Iterable[str] = ("id",),
                       top: int = 999) -> Iterator[list[dict[str, Any]]]:
    """Direct members of a group (Entra's scoping counts direct members only), page by page."""

    params, headers = _list_params(select, None, top, None)
    return _pages(client, f"groups/{segment(group_id)}/members", params, headers)


def iter_directory_roles(client: GraphClient) -> Iterator[list[dict[str, Any]]]:
    """GET /directoryRoles: the activated roles (RoleManagement.Read.Directory). Graph documents no query
    options for this list, so none are sent; the default properties include id and displayName."""
    return _pages(client, "directoryRoles", {}, None)


def iter_role_members(client: GraphClient, role_id: str,
                      select: Iterable[str] = ("id",)) -> Iterator[list[dict[str, Any]]]:
    """Holders of one directory role (users, and service principals, which callers may ignore)."""

    return _pages(client, f"directoryRoles/{segment(role_id)}/members", {"$select": _select(select)}, None)


def find_users(client: GraphClient, filter: str | Filter, select: Iterable[str] = ("id",),
               limit: int = 1000) -> list[dict[str, Any]]:
    """A small lookup; refuses to grow past `limit` so a bad filter can't load a whole tenant."""
    found: list[dict[str, Any]] = []
    for page in iter_users(client, select, filter, top=min(max(limit, 1), 999)):
        found.extend(page)
        if len(found) > limit:
            raise GraphError(client.conn.name, client.url("users"),
                             f"lookup matched more than {limit} users", method="GET",
                             fix="narrow the filter; find_users is for small lookups")
    return found


def verified_domains(client: GraphClient) -> list[dict[str, Any]]:
    """The tenant's verifiedDomains (GET /organization): which mail domains this tenant provably owns."""
    body = client.request("GET", "organization", params={"$select": "id,verifiedDomains"}) or {}
    return [d for org in body.get("value", []) for d in org.get("verifiedDomains") or [] if d.get("name")]


def partner_sync_policy(client: GraphClient, partner_tenant_id: str) -> dict[str, Any] | None:
    """The target's inbound identitySynchronization setting for a partner, or None if not configured.

    Without the response's OData control information (`@odata.context` names the endpoint it was read from):
    the setting is what the snapshot keeps and the pair's fingerprint hashes, and another host or port for
    the same tenant is not a change of policy.
    """
    path = f"policies/crossTenantAccessPolicy/partners/{segment(partner_tenant_id)}/identitySynchronization"
    try:
        body = client.request("GET", path)
    except NotFoundError:
        return None
    return {k: v for k, v in body.items() if not k.startswith("@odata.")} if isinstance(body, dict) else body


def _short_name(full: str) -> str | None:
    """`extension_<32 hex appId>_<name>` -> `<name>`."""
    if not full.startswith(EXTENSION_PREFIX):
        return None
    rest = full[len(EXTENSION_PREFIX):]
    app, sep, name = rest.partition("_")
    if not sep or len(app) != 32:
        return None
    return name


def registered_extensions(client: GraphClient, app_object_id: str) -> set[str]:
    """Full names of the user directory extensions registered on the app (GET extensionProperties)."""

    out: set[str] = set()
    for body in client.iter_pages(f"applications/{segment(app_object_id)}/extensionProperties"):
        for ext in body.get("value", []):
            if ext.get("name") and "User" in (ext.get("targetObjects") or ["User"]):
                out.add(str(ext["name"]))
    return out


def ensure_extensions(client: GraphClient, app_object_id: str, names: Iterable[str],
                      data_type: str = "String") -> dict[str, str]:
    """Register missing directory extensions on the app (GET, then POST only what is missing)."""

    wanted = [prop(n) for n in names]
    path = f"applications/{segment(app_object_id)}/extensionProperties"

    def existing() -> dict[str, str]:
        out: dict[str, str] = {}
        for body in client.iter_pages(path):
            for ext in body.get("value", []):
                short = _short_name(str(ext.get("name", "")))
                if short and "User" in (ext.get("targetObjects") or ["User"]):
                    out[short] = ext["name"]
        return out

    have = existing()
    for name in wanted:
        if name in have:
            continue
        try:
            created = client.request("POST", path, json_body={
                "name": name, "dataType": data_type, "targetObjects": ["User"]})
        except GraphError as exc:
            if exc.status in (400, 409):  # created concurrently by another run: read it back
                have = existing()
                if name in have:
                    continue
            raise
        have[name] = created["name"]
    return {n: have[n] for n in wanted}


def latest_users_delta_link(client: GraphClient, select: Iterable[str]) -> str:
    """A users delta link that starts now, without reading any user (with the manager tracked, as on delta).

    concepts/delta-query-overview.md: "Microsoft Entra ID resources such as users and groups support "sync
    from now" scenarios ... Append `$deltatoken=latest` to the `delta` function and the response contains a
    `@odata.deltaLink` and no resource data."
    """
    wanted = list(dict.fromkeys([*select, MANAGER_SELECT]))
    for body in client.iter_pages("users/delta", {"$select": _select(wanted), "$deltatoken": "latest"}):
        link = body.get("@odata.deltaLink")
        if link:
            return link
    raise GraphError(client.conn.name, client.url("users/delta"), "$deltatoken=latest answered without an "
                     "@odata.deltaLink", method="GET", fix="report it: Graph documents a delta link in that answer")


class DeltaRound:
    """One delta round. Iterate for pages; afterwards `.delta_link` holds the link to persist.

    If Graph says the stored token is expired/unknown (410, syncStateNotFound, resyncRequired),
    the round restarts as a full sync and `.resynced` is True: the caller must then treat the
    round as a complete snapshot (users it doesn't see are gone). Pages already yielded before a
    mid-round expiry are repeated; delta consumers must tolerate replays anyway.
    """

    def __init__(self, client: GraphClient, select: list[str], delta_link: str | None,
                 page_size: int = 999, expand: str | None = None) -> None:
        self._client = client
        if expand and expand.split("(")[0].strip().lower() != "manager":
            raise ValueError("the delta query of users supports no $expand, only the manager relationship in "
                             f"$select; got expand={expand!r}")
        if expand:  # the manager is tracked through $select on delta, never $expand
            select = [*select, MANAGER_SELECT] if MANAGER_SELECT not in select else select
        # Graph sizes delta pages itself; `Prefer: odata.maxpagesize` asks for bigger ones where honoured.
        self._headers = {"Prefer": f"odata.maxpagesize={page_size}"}
        self._select = select
        self._start_link = delta_link
        self.delta_link: str | None = None
        self.resynced = False
        self.pages = 0
        self.items = 0
        self._started = False

    def __repr__(self) -> str:  # links carry opaque state; keep them out of reprs
        return (f"DeltaRound(tenant={self._client.conn.name!r}, pages={self.pages}, items={self.items}, "
                f"resynced={self.resynced}, done={self.delta_link is not None})")

    def __iter__(self) -> Iterator[list[dict[str, Any]]]:
        if self._started:
            raise RuntimeError("a DeltaRound can be iterated once; start a new round with delta_users()")
        self._started = True
        if self._start_link:
            try:
                yield from self._run(self._start_link, None)
                return
            except DeltaTokenExpiredError:
                self.resynced = True
        params = {"$select": _select(self._select)}  # kept in the delta token by Graph for later rounds
        yield from self._run("users/delta", params)

    def _run(self, url: str, params: dict[str, Any] | None) -> Iterator[list[dict[str, Any]]]:
        for body in self._client.iter_pages(url, params, self._headers):
            page = body.get("value", [])
            self.pages += 1
            self.items += len(page)
            link = body.get("@odata.deltaLink")
            yield page
            if link:
                self.delta_link = link
