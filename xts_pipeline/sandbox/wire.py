"""What a sandbox Graph handler receives and returns, and the resource shapes handlers share.

Its own module so the app (routing, auth, throttling), $batch and the Graph handlers all import it,
and neither imports the other at run time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import orjson

from .clock import iso
from .store import COLLECTION_PROPS, Tenant
from .tokens import TokenClaims

USER_PROPS = (
    "id", "userPrincipalName", "mail", "mailNickname", "otherMails", "displayName", "givenName", "surname",
    "jobTitle", "department", "companyName", "officeLocation", "city", "state", "country", "streetAddress",
    "postalCode", "usageLocation", "employeeId", "employeeType", "mobilePhone", "businessPhones",
    "preferredLanguage", "accountEnabled", "userType", "creationType", "externalUserState",
    "externalUserStateChangeDateTime", "showInAddressList", "createdDateTime", "deletedDateTime",
    "faxNumber", "proxyAddresses", "identities", "imAddresses", "onPremisesExtensionAttributes",
    "onPremisesSyncEnabled",
)
# Read-only in resources/user.md (proxyAddresses "Read-only, Not nullable"; onPremisesSyncEnabled "Read-only");
# identities needs User.ManageIdentities.All to write (api/user-update.md), which no sandbox app holds.
READ_ONLY_USER_PROPS = {"id", "creationType", "externalUserState", "externalUserStateChangeDateTime",
                        "createdDateTime", "deletedDateTime", "proxyAddresses", "imAddresses",
                        "onPremisesSyncEnabled", "identities"}
BOOL_PROPS = {"accountEnabled", "showInAddressList"}
LIST_PROPS = {"otherMails", "businessPhones"}
GROUP_PROPS = ("id", "displayName", "description", "mail", "mailEnabled", "mailNickname", "groupTypes",
               "membershipRule", "membershipRuleProcessingState", "securityEnabled", "isAssignableToRole",
               "createdDateTime")
GROUP_DEFAULT = GROUP_PROPS
DELTA_TOKEN_TTL_S = 7 * 24 * 3600
DELTA_PAGE = 200
MAX_BATCH = 20



class GraphError(Exception):
    """An error answered with Graph's error body."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


@dataclass
class GraphRequest:
    method: str
    path: str  # after /v1.0, URL-decoded, e.g. "/users/abc"
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes | None
    tenant: Tenant
    claims: TokenClaims
    request_id: str
    client_request_id: str
    raw_query: str = ""

    def param(self, name: str) -> str | None:
        """System query options with or without `$`, case-insensitive, as Graph v1.0 accepts them."""
        return self.query.get(name.lower().lstrip("$"))

    def json(self) -> dict:
        if not self.body:
            raise GraphError(400, "BadRequest", "Write requests (excluding DELETE) must contain the Content-Type "
                             "header declaration and a JSON body.")
        try:
            obj = orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise GraphError(400, "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type "
                             f"header is set and payload is of valid JSON format ({exc}).") from None
        if not isinstance(obj, dict):
            raise GraphError(400, "BadRequest", "Unable to read JSON request payload: the body must be a JSON object.")
        return obj


@dataclass
class GraphResponse:
    status: int
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False


def _ok(obj, status: int = 200) -> GraphResponse:
    return GraphResponse(status, orjson.dumps(obj))


def _no_content() -> GraphResponse:
    return GraphResponse(204)


def error_body(code: str, message: str, request_id: str, client_request_id: str, now: float) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message, "innerError": {
        "date": iso(now), "request-id": request_id, "client-request-id": client_request_id}}})


_NORMALIZED = (*COLLECTION_PROPS, "onPremisesExtensionAttributes")
_FIXUPS: dict[tuple, tuple[str, ...]] = {}


def _project(d: dict, props) -> dict:
    """The selected properties; a collection is never null (the v1.0 schema's collections are arrays)."""
    out = {k: d.get(k) for k in props}
    key = props if isinstance(props, tuple) else tuple(props)
    fix = _FIXUPS.get(key)
    if fix is None:
        fix = _FIXUPS[key] = tuple(k for k in _NORMALIZED if k in key) if len(_FIXUPS) < 4096 else \
            tuple(k for k in _NORMALIZED if k in out)
    for k in fix:
        if out[k] is None:
            if k == "onPremisesExtensionAttributes":
                out[k] = {f"extensionAttribute{i}": None for i in range(1, 16)}
            elif k == "identities":
                out[k] = _identities(d)
            else:
                out[k] = [f"SMTP:{d['mail']}"] if k == "proxyAddresses" and d.get("mail") else []
    return out


def _identities(d: dict) -> list[dict]:
    """resources/objectidentity.md: every user signs in with its UPN in the tenant ("signInType":
    "userPrincipalName"); a B2B user who redeemed through Microsoft Entra also has a federated identity
    issued by ExternalAzureAD."""
    upn = d.get("userPrincipalName") or ""
    out = [{"signInType": "userPrincipalName", "issuer": upn.rsplit("@", 1)[-1], "issuerAssignedId": upn}]
    if d.get("creationType") == "Invitation" and d.get("externalUserState") == "Accepted":
        out.append({"signInType": "federated", "issuer": "ExternalAzureAD", "issuerAssignedId": None})
    return out


def parse_query(raw: str) -> dict[str, str]:
    """Query options keyed lower-case without `$` (Graph accepts `$top` and `top`)."""
    return {k.lower().lstrip("$"): v for k, v in parse_qsl(raw, keep_blank_values=True)}
