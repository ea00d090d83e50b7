"""Graph URLs: an escaped path segment and a query string that keeps OData literals byte-for-byte.

A module of its own because the client, the reader and the writer all build URLs, and the reader must not
import the client that imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode


def build_url(url: str, params: Mapping[str, Any] | None) -> str:
    """`url?params` with %20 for spaces (not '+') so OData literals reach Graph byte-for-byte."""
    if not params:
        return url
    query = urlencode({k: str(v) for k, v in params.items()}, quote_via=quote, safe="$,/:()@")
    return f"{url}{'&' if '?' in url else '?'}{query}"


def segment(value: str) -> str:
    """A path segment from an id: percent-encoded so it can't add path or query parts."""
    return quote(str(value), safe="")
