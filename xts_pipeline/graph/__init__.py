"""Microsoft Graph client for xts_pipeline: MSAL auth, streamed reads, delta, $batch writes.

Public surface (see docs/DESIGN.md, "Graph client contract"): GraphClient, TenantConnection,
GraphError and its subclasses; writer types live in `xts_pipeline.graph.writer`.
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
