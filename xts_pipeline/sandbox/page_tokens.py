"""Opaque, tamper-evident $skiptoken and $deltatoken values: the listing's state, MAC'd with a server key.

Graph's tokens are opaque to clients; these carry the paging state themselves (no server-side cursor
table) and a truncated HMAC, so a token edited or made up by a client is refused rather than followed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import orjson


class PageTokens:
    """Encode a state dict as a token and decode it back; None for a token this server did not issue."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def encode(self, state: dict) -> str:
        raw = orjson.dumps(state)
        mac = hmac.new(self._key, raw, hashlib.sha256).digest()[:12]
        return base64.urlsafe_b64encode(mac + raw).decode().rstrip("=")

    def decode(self, token: str) -> dict | None:
        try:
            blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            mac, raw = blob[:12], blob[12:]
            if not hmac.compare_digest(mac, hmac.new(self._key, raw, hashlib.sha256).digest()[:12]):
                return None
            state = orjson.loads(raw)
            return state if isinstance(state, dict) else None
        except (ValueError, orjson.JSONDecodeError):
            return None
