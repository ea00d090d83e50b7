"""GraphError hierarchy: every failure becomes one actionable line naming tenant and endpoint.

Why a hierarchy: callers (apply, assets, CLI) react differently to bad credentials (stop the
tenant), a missing permission (tell the admin which one), an unreachable host or a TLS problem
(fix config), and throttling (wait). Messages never contain secrets or tokens: they are built only
from the tenant name, the endpoint without its query string, and Graph's own code/message.
"""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = [
    "GraphError",
    "AuthError",
    "PermissionError_",
    "UnreachableError",
    "TlsError",
    "ThrottledError",
    "NotFoundError",
    "DeltaTokenExpiredError",
    "permission_hint",
    "endpoint_of",
    "parse_error_body",
]


def endpoint_of(url: str) -> str:
    """The URL without query or fragment: filters may hold personal data and nextLinks carry tokens."""
    parts = urlsplit(url)
    if not parts.scheme:
        return url.split("?", 1)[0]
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def parse_error_body(body: object) -> tuple[str | None, str | None]:
    """(code, message) from Graph's `{"error": {...}}` or Entra's `{"error", "error_description"}`."""
    if not isinstance(body, dict):
        return None, None
    err = body.get("error")
    if isinstance(err, dict):
        code = err.get("code")
        message = err.get("message")
        return (str(code) if code is not None else None, str(message) if message is not None else None)
    if isinstance(err, str):
        desc = body.get("error_description")
        return err, (str(desc).splitlines()[0] if desc else None)
    return None, None


# (method, first path segment / marker) -> the application permission that route needs.
_PERMISSIONS: list[tuple[str | None, str, str]] = [
    (None, "/invitations", "User.Invite.All"),
    (None, "/extensionproperties", "Application.ReadWrite.OwnedBy (or Application.ReadWrite.All)"),
    ("GET", "/applications", "Application.Read.All"),
    ("GET", "/policies/crosstenantaccesspolicy", "Policy.Read.All"),
    (None, "/policies/crosstenantaccesspolicy", "Policy.ReadWrite.CrossTenantAccess"),
    ("GET", "/directoryroles", "RoleManagement.Read.Directory"),
    ("GET", "/directory/deleteditems", "User.Read.All"),
    (None, "/directory/deleteditems", "User.ReadWrite.All"),
    ("GET", "/manager", "User.Read.All"),
    (None, "/manager", "User.ReadWrite.All"),
    ("GET", "/groups", "GroupMember.Read.All (or Group.Read.All)"),
    ("GET", "/organization", "Organization.Read.All"),
    ("GET", "/users", "User.Read.All"),
    (None, "/users", "User.ReadWrite.All"),
]


def permission_hint(method: str, url: str) -> str:
    """The Graph application permission most likely missing for this call (for 403 messages)."""
    path = urlsplit(url).path.lower() if "://" in url else url.split("?", 1)[0].lower()
    for m, marker, perm in _PERMISSIONS:
        if (m is None or m == method.upper()) and marker in path:
            return perm
    return "the Graph application permission this endpoint documents"


class GraphError(Exception):
    """A Graph or Entra call failed; `str()` is one line: tenant, endpoint, what happened, what to do."""

    default_fix = "see Graph's error code and message above"

    def __init__(
        self,
        tenant: str,
        endpoint: str,
        summary: str,
        *,
        fix: str | None = None,
        status: int | None = None,
        code: str | None = None,
        graph_message: str | None = None,
        method: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.tenant = tenant
        self.endpoint = endpoint_of(endpoint)
        self.summary = summary
        self.fix = fix or self.default_fix
        self.status = status
        self.code = code
        self.graph_message = graph_message
        self.method = method
        self.retry_after = retry_after
        super().__init__(self._line())

    def _line(self) -> str:
        where = f"{self.method} {self.endpoint}" if self.method else self.endpoint
        parts = [f"tenant {self.tenant!r}: {where}: {self.summary}"]
        if self.code or self.graph_message:
            parts.append(f" ({self.code or 'no code'}: {self.graph_message or 'no message'})")
        parts.append(f" - fix: {self.fix}")
        return "".join(parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._line()!r})"


class AuthError(GraphError):
    """The token endpoint refused the app: wrong client id/secret/certificate, tenant or authority."""

    default_fix = "check the tenant's client_id, credential (secret or certificate) and authority in the config"


class PermissionError_(GraphError):  # noqa: N801 - trailing underscore avoids shadowing the builtin
    """403: the app lacks an application permission (or admin consent) for this endpoint."""

    default_fix = "grant the permission named here to the app and give admin consent"


class UnreachableError(GraphError):
    """DNS, connection refused or timeout: the host in the config is wrong or down."""

    default_fix = "check the authority/graph_url host in the config and network access to it"


class TlsError(GraphError):
    """The server's certificate did not verify against the configured CA (verification stays on)."""

    default_fix = "set ca_file to the CA that signed the server certificate (verification is never disabled)"


class ThrottledError(GraphError):
    """Graph kept answering 429 beyond the retry budget."""

    default_fix = "wait and run again, or lower the load from other apps on this tenant"


class NotFoundError(GraphError):
    """404 for an object the caller named."""

    default_fix = "check the object id; it may have been deleted"


class DeltaTokenExpiredError(GraphError):
    """The deltaLink is expired or unknown; the reader turns this into a full resync."""

    default_fix = "run a full resync (the reader does this automatically)"
