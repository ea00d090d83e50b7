"""App-only tokens with MSAL: one ConfidentialClientApplication per tenant, reused for its cache.

Why reuse: `acquire_token_for_client` serves from the app's in-memory token cache and only goes
to the token endpoint when the token is near expiry (MSAL refreshes ahead of `expires_in`). A new
app per call would hit Entra on every request. MSAL gets the same requests.Session as Graph calls,
so the custom CA (and `trust_env=False`) apply to the authority too.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import jwt
import msal
import requests

from .connection import TenantConnection
from .errors import AuthError, TlsError, UnreachableError

__all__ = ["TokenProvider"]

# AADSTS codes worth a specific hint (from Entra's error-code reference).
_AADSTS_FIX = {
    "7000215": "the client secret is wrong; copy the secret *value* (not its id) into the credential",
    "7000222": "the client secret has expired; create a new secret for the app",
    "700016": "no app with this client_id exists in the tenant; check client_id and tenant_id",
    "90002": "the tenant was not found; check tenant_id/authority",
    "700027": "the certificate assertion was rejected; upload the certificate to the app registration",
    "7000112": "the app is disabled in this tenant; enable it",
}


def _certificate_credential(conn: TenantConnection) -> dict[str, str]:
    """MSAL's certificate credential from a PEM holding the private key and the certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    path = Path(conn.certificate_path or "")
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise AuthError(
            conn.name, conn.authority or "", f"cannot read certificate file {str(path)!r} ({exc.strerror})",
            fix="set certificate to a readable PEM file with the private key and certificate",
        ) from None
    thumbprint = conn.certificate_thumbprint
    if not thumbprint:
        try:
            cert = x509.load_pem_x509_certificate(pem)
        except ValueError:
            raise AuthError(
                conn.name, conn.authority or "", f"certificate file {str(path)!r} holds no PEM certificate",
                fix="put the certificate (and its private key) in PEM form in that file, or give thumbprint",
            ) from None
        thumbprint = hashlib.sha1(cert.public_bytes(Encoding.DER), usedforsecurity=False).hexdigest()
    return {"private_key": pem.decode("ascii", "replace"), "thumbprint": thumbprint}


class TokenProvider:
    """Lazily builds the MSAL app and hands out bearer tokens; thread-safe."""

    def __init__(self, conn: TenantConnection, session: requests.Session) -> None:
        self._conn = conn
        self._session = session
        self._app: msal.ConfidentialClientApplication | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TokenProvider(tenant={self._conn.name!r}, authority={self._conn.authority!r})"

    def _build_app(self) -> msal.ConfidentialClientApplication:
        conn = self._conn
        credential: str | dict[str, str]
        if conn.certificate_path:
            credential = _certificate_credential(conn)
        else:
            assert conn.client_secret is not None  # TenantConnection guarantees one credential
            credential = conn.client_secret.get_secret_value()
        try:
            return msal.ConfidentialClientApplication(
                conn.client_id,
                client_credential=credential,
                authority=conn.authority,
                http_client=self._session,
                instance_discovery=conn.is_microsoft_authority,
                token_cache=msal.TokenCache(),
            )
        except requests.exceptions.SSLError:
            raise TlsError(conn.name, conn.authority or "", "TLS verification of the authority failed") from None
        except requests.exceptions.RequestException as exc:
            raise UnreachableError(
                conn.name, conn.authority or "", f"authority unreachable ({type(exc).__name__})"
            ) from None
        except ValueError as exc:
            # MSAL raises ValueError for a malformed authority or a failed openid-configuration read.
            raise AuthError(
                conn.name, conn.authority or "", f"authority rejected by MSAL: {str(exc).splitlines()[0][:200]}",
                fix="the authority must be https://<host>/<tenant id or domain> and serve openid-configuration",
            ) from None

    def token(self, *, force_refresh: bool = False) -> str:
        """A valid access token (from cache unless near expiry or `force_refresh`)."""
        conn = self._conn
        with self._lock:
            if self._app is None:
                self._app = self._build_app()
            app = self._app
            if force_refresh:
                app.remove_tokens_for_client()
            try:
                result = app.acquire_token_for_client(scopes=[conn.graph_scope])
            except requests.exceptions.SSLError:
                raise TlsError(conn.name, conn.authority or "", "TLS verification of the token endpoint failed") from None
            except requests.exceptions.RequestException as exc:
                raise UnreachableError(
                    conn.name, conn.authority or "", f"token endpoint unreachable ({type(exc).__name__})"
                ) from None
            except (jwt.PyJWTError, ValueError, TypeError) as exc:
                # MSAL signs the certificate assertion with RS256/PS256: only RSA keys work.
                raise AuthError(
                    conn.name, conn.authority or "", f"cannot sign the client assertion ({type(exc).__name__})",
                    fix="use a PEM with an RSA private key and its certificate for the app credential",
                ) from None
        if "access_token" in result:
            return str(result["access_token"])
        code = str(result.get("error") or "unknown_error")
        desc = str(result.get("error_description") or "").splitlines()[0][:300] if result.get("error_description") else None
        codes = [str(c) for c in result.get("error_codes") or []]
        fix = next((_AADSTS_FIX[c] for c in codes if c in _AADSTS_FIX), None)
        raise AuthError(
            conn.name, f"{conn.authority}/oauth2/v2.0/token", "the token endpoint refused the app",
            code=code, graph_message=desc, fix=fix, method="POST",
        )
