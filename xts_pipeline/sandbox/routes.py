"""The Graph route table: method and path -> handler, and the application permissions that may call it.

Routes are regular expressions over the path below /v1.0, matched case-insensitively like Graph; the
permissions are Graph's per-endpoint tables (permissions.py). `$batch` sub-requests go through the same
table, so a route added here is served both ways.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from . import handlers as h
from .permissions import (
    APP_READ,
    DELETED_USERS_READ,
    DELETED_USERS_WRITE,
    EXTENSIONS_READ,
    EXTENSIONS_WRITE,
    GROUPS_READ,
    INVITE,
    ORG_READ,
    POLICY_READ,
    POLICY_WRITE,
    ROLES_READ,
    USERS_READ,
    USERS_WRITE,
)
from .wire import GraphError, GraphRequest


@dataclass
class GraphRoute:
    method: str
    pattern: re.Pattern
    handler: Callable
    permission: tuple[str, ...] | None  # any one of these; None: any valid token


def graph_routes() -> list[GraphRoute]:
    """Every Graph route the sandbox serves, in matching order (the first match wins)."""
    routes: list[GraphRoute] = []
    seg = r"([^/]+)"

    def add(method: str, pattern: str, handler: Callable, permission: tuple[str, ...] | None) -> None:
        routes.append(GraphRoute(method, re.compile("^" + pattern + "$", re.IGNORECASE), handler, permission))

    add("GET", r"/users/(?:microsoft\.graph\.)?delta(?:\(\))?", h.users_delta, USERS_READ)
    add("GET", r"/users", h.list_users, USERS_READ)
    add("GET", r"/users/\$count", h.count_users, USERS_READ)
    add("POST", r"/users", h.create_user, USERS_WRITE)
    add("GET", rf"/users/{seg}", h.get_user, USERS_READ)
    add("PATCH", rf"/users/{seg}", h.patch_user, USERS_WRITE)
    add("DELETE", rf"/users/{seg}", h.delete_user, USERS_WRITE)
    add("GET", rf"/users/{seg}/manager", h.get_manager, USERS_READ)
    add("PUT", rf"/users/{seg}/manager/\$ref", h.put_manager, USERS_WRITE)
    add("DELETE", rf"/users/{seg}/manager/\$ref", h.delete_manager, USERS_WRITE)
    add("POST", r"/invitations", h.create_invitation, INVITE)
    # OData cast segments: the OpenAPI paths use the alias form (`graph.user`) as well as the full name.
    add("GET", r"/directory/deletedItems/(?:microsoft\.)?graph\.user", h.list_deleted, DELETED_USERS_READ)
    add("GET", rf"/directory/deletedItems/{seg}", h.get_deleted, DELETED_USERS_READ)
    add("POST", rf"/directory/deletedItems/{seg}/(?:microsoft\.graph\.)?restore", h.restore_deleted,
        DELETED_USERS_WRITE)
    add("DELETE", rf"/directory/deletedItems/{seg}", h.purge_deleted, DELETED_USERS_WRITE)
    # api/application-get.md: GET /applications/{id} and GET /applications(appId='{appId}').
    app_key = r"(?:/applications/([^/(]+)|/applications\((appId=[^)]*)\))"
    add("GET", app_key, h.get_application, APP_READ)
    add("GET", rf"{app_key}/extensionProperties", h.list_extensions, EXTENSIONS_READ)
    add("POST", rf"{app_key}/extensionProperties", h.create_extension, EXTENSIONS_WRITE)
    add("GET", r"/groups", h.list_groups, GROUPS_READ)
    add("GET", rf"/groups/{seg}", h.get_group, GROUPS_READ)
    add("GET", rf"/groups/{seg}/members", h.list_members, GROUPS_READ)
    add("GET", r"/directoryRoles", h.list_directory_roles, ROLES_READ)
    add("GET", rf"/directoryRoles/{seg}", h.get_directory_role, ROLES_READ)
    add("GET", rf"/directoryRoles/{seg}/members", h.list_role_members, ROLES_READ)
    # api/directoryrole-get.md: GET /directoryRoles(roleTemplateId='{roleTemplateId}')
    add("GET", r"/directoryRoles\((roleTemplateId=[^)]*)\)", h.get_directory_role, ROLES_READ)
    add("GET", r"/directoryRoles\((roleTemplateId=[^)]*)\)/members", h.list_role_members, ROLES_READ)
    add("GET", r"/organization", h.get_organization, ORG_READ)
    add("GET", r"/policies/crossTenantAccessPolicy/partners", h.list_partners, POLICY_READ)
    add("GET", rf"/policies/crossTenantAccessPolicy/partners/{seg}", h.get_partner, POLICY_READ)
    add("PATCH", rf"/policies/crossTenantAccessPolicy/partners/{seg}", h.patch_partner, POLICY_WRITE)
    add("GET", rf"/policies/crossTenantAccessPolicy/partners/{seg}/identitySynchronization", h.get_identity_sync,
        POLICY_READ)
    add("PUT", rf"/policies/crossTenantAccessPolicy/partners/{seg}/identitySynchronization", h.put_identity_sync,
        POLICY_WRITE)
    add("PATCH", rf"/policies/crossTenantAccessPolicy/partners/{seg}/identitySynchronization",
        h.put_identity_sync, POLICY_WRITE)
    return routes


def match_route(routes: list[GraphRoute], req: GraphRequest) -> tuple[GraphRoute, re.Match]:
    """The route for the request; Graph's 405 for a known path with another method, 400 for an unknown one."""
    path = req.path.rstrip("/") or "/"
    allowed = False
    for route in routes:
        m = route.pattern.match(path)
        if m:
            if route.method == req.method:
                return route, m
            allowed = True
    if allowed:
        raise GraphError(405, "Request_BadRequest",
                         f"The HTTP method '{req.method}' is not allowed for {req.path}.")
    seg = path.strip("/").split("/")[0] if path != "/" else ""
    raise GraphError(400, "BadRequest", f"Resource not found for the segment '{seg}'. "
                     "The sandbox serves users, invitations, directory/deletedItems, groups, directoryRoles, "
                     "applications, policies/crossTenantAccessPolicy and $batch.")


def path_ids(match: re.Match) -> list[str]:
    """The ids a route captured; alternatives (`/x/{id}` or `x(key='..')`) leave None groups, dropped."""
    return [g for g in match.groups() if g is not None]
