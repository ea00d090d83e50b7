"""Microsoft Graph client for xts_pipeline: MSAL auth, streamed reads, delta, $batch writes.

Public surface (see docs/DESIGN.md, "Graph client contract"): GraphClient, TenantConnection,
GraphError and its subclasses; writer types live in `xts_pipeline.graph.writer`, the filter
builder in `xts_pipeline.graph.odata`.

Behaviour worth knowing:
- TLS is always verified, against `ca_file` or certifi. The session ignores the environment
  (`trust_env=False`), so REQUESTS_CA_BUNDLE can't override the CA, but HTTP(S)_PROXY is ignored
  too: pass `proxies=` to `http.make_session` and hand that session to GraphClient if needed.
- Tokens: one MSAL ConfidentialClientApplication per client, reused, so its cache serves tokens
  until near expiry; a 401 from Graph forces one refresh.
- A create is one WriteOp and one Outcome, but two requests in two batches (invitation, then the
  PATCH with the invited id): Graph $batch can't pass a response value to a later request.
- Reads retry 429 (Retry-After), 5xx and lost connections; writes are retried by BatchWriter,
  which never re-sends an invitation whose answer was lost before looking the user up.
"""

from .client import GraphClient
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
)
from .reader import DeltaRound

__all__ = [
    "GraphClient",
    "TenantConnection",
    "DeltaRound",
    "GraphError",
    "AuthError",
    "PermissionError_",
    "UnreachableError",
    "TlsError",
    "ThrottledError",
    "NotFoundError",
    "DeltaTokenExpiredError",
]
