"""Entra-style token issuing (client credentials) and Graph-side verification; RS256 JWTs via pyjwt.

Expiry follows the sandbox clock, so `--time-scale` shortens token lifetimes in wall time too.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from .clock import iso

GRAPH_AUDIENCE = "https://graph.microsoft.com"
TOKEN_LIFETIME_S = 3599
GRAPH_SCOPE = "https://graph.microsoft.com/.default"


class TokenError(Exception):
    """A Graph access token was refused; the message is what Graph tells the client."""


@dataclass(frozen=True)
class TokenClaims:
    tenant_id: str
    app_id: str
    roles: frozenset[str]
    exp: float


class TokenSigner:
    """Holds the sandbox's RSA signing key (DIR/signing-key.pem, mode 0600)."""

    def __init__(self, state_dir: Path) -> None:
        path = Path(state_dir) / "signing-key.pem"
        if path.exists():
            self._key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        else:
            self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = self._key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
        self._public = self._key.public_key()
        der = self._public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.kid = hashlib.sha256(der).hexdigest()[:27]

    def __repr__(self) -> str:  # never show key material
        return f"TokenSigner(kid={self.kid!r})"

    def issue(self, *, tenant_id: str, app_id: str, roles: list[str], now: float, issuer: str) -> str:
        claims = {
            "aud": GRAPH_AUDIENCE,
            "iss": issuer,
            "iat": int(now),
            "nbf": int(now) - 300,
            "exp": int(now) + TOKEN_LIFETIME_S,
            "tid": tenant_id,
            "appid": app_id,
            "azp": app_id,
            "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp:{tenant_id}:{app_id}")),
            "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp:{tenant_id}:{app_id}")),
            "idtyp": "app",
            "roles": sorted(roles),
            "ver": "1.0",
            "uti": secrets.token_urlsafe(16),
        }
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})

    def verify(self, token: str, now: float) -> TokenClaims:
        """Check signature, audience and expiry (on the sandbox clock)."""
        try:
            claims = jwt.decode(
                token, self._public, algorithms=["RS256"], audience=GRAPH_AUDIENCE,
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                         "require": ["exp", "tid", "appid"]},
            )
        except jwt.InvalidAudienceError as exc:
            raise TokenError("Access token validation failure. Invalid audience.") from exc
        except jwt.PyJWTError as exc:
            raise TokenError("IDX14100: JWT is not well formed or its signature is invalid.") from exc
        if float(claims["exp"]) <= now:
            raise TokenError(f"Lifetime validation failed, the token is expired (expired {iso(claims['exp'])}).")
        return TokenClaims(claims["tid"], claims["appid"], frozenset(claims.get("roles") or ()), claims["exp"])

    def jwks(self) -> dict:
        jwk = RSAAlgorithm.to_jwk(self._public, as_dict=True)
        jwk.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        return {"keys": [jwk]}


def entra_error(error: str, aadsts: int, description: str, now: float) -> dict:
    """Entra's OAuth error body (AADSTS code in both error_description and error_codes)."""
    trace = str(uuid.uuid4())
    corr = str(uuid.uuid4())
    return {
        "error": error,
        "error_description": f"AADSTS{aadsts}: {description} Trace ID: {trace} Correlation ID: {corr} "
        f"Timestamp: {iso(now)}",
        "error_codes": [aadsts],
        "timestamp": iso(now),
        "trace_id": trace,
        "correlation_id": corr,
        "error_uri": "https://login.microsoftonline.com/error?code=" + str(aadsts),
    }


def client_credentials(form: dict, tenant, signer: TokenSigner, now: float, issuer: str,
                       tenant_key: str) -> tuple[int, dict]:
    """Handle a token request for one tenant (None when unknown). Returns (status, body)."""
    if tenant is None:
        return 400, entra_error(
            "invalid_tenant", 90002,
            f"Tenant '{tenant_key}' not found. Check the authority: it must be a sandbox tenant id or domain "
            "listed in sandbox.json.", now)
    grant = form.get("grant_type")
    if grant != "client_credentials":
        return 400, entra_error(
            "unsupported_grant_type", 70003,
            f"The app requested an unsupported grant type '{grant}'. The sandbox supports client_credentials.",
            now)
    client_id = form.get("client_id") or ""
    if client_id != tenant.client_id:
        return 400, entra_error(
            "unauthorized_client", 700016,
            f"Application with identifier '{client_id}' was not found in the directory '{tenant.name}'. "
            "Use the client_id listed for this tenant in sandbox.json.", now) | {"error": "invalid_client"}
    secret = form.get("client_secret")
    if not secret or not secrets.compare_digest(str(secret).encode(), tenant.client_secret.encode()):
        return 401, entra_error(
            "invalid_client", 7000215,
            f"Invalid client secret provided for app '{client_id}' in tenant '{tenant.name}'. Ensure the secret "
            "being sent in the request is the client secret value from sandbox.json, not the client secret ID.",
            now)
    scope = form.get("scope") or ""
    if GRAPH_SCOPE not in scope.split() and "https://graph.microsoft.com//.default" not in scope.split():
        return 400, entra_error(
            "invalid_scope", 1002012,
            f"The provided value for scope '{scope}' is not valid. Client credential flows must have a scope "
            f"value with /.default suffixed to the resource identifier: use {GRAPH_SCOPE}.", now)
    token = signer.issue(tenant_id=tenant.tenant_id, app_id=tenant.client_id, roles=list(tenant.permissions),
                         now=now, issuer=issuer)
    return 200, {"token_type": "Bearer", "expires_in": TOKEN_LIFETIME_S, "ext_expires_in": TOKEN_LIFETIME_S,
                 "access_token": token}
