"""requests.Session factory for Graph and Entra: TLS always verified, pool sized for concurrency.

Why `trust_env = False`: with it on, requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override
`Session.verify`, so a custom CA (or certifi) silently stops being the trust anchor. The price is
that HTTP(S)_PROXY / NO_PROXY and ~/.netrc are ignored too; pass `proxies=` explicitly if a proxy
is needed. Retries are *not* done here (no urllib3 Retry): the client's own retry logic must see
every 429/5xx to honour Retry-After, feed the concurrency controller and keep creates idempotent.
"""

from __future__ import annotations

import os

import certifi
import requests
from requests.adapters import HTTPAdapter

from .. import __version__

__all__ = ["make_session", "USER_AGENT"]

USER_AGENT = f"xts-pipeline/{__version__}"


def make_session(
    ca_file: str | os.PathLike[str] | None = None,
    *,
    pool_size: int = 16,
    proxies: dict[str, str] | None = None,
) -> requests.Session:
    """A Session that verifies TLS against `ca_file` (or certifi's bundle) and never against env vars."""
    verify: str
    if ca_file is not None:
        path = os.fspath(ca_file)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"CA file {path!r} does not exist; fix ca_file in the tenant config")
        verify = path
    else:
        verify = certifi.where()
    session = requests.Session()
    session.trust_env = False
    session.verify = verify
    if proxies:
        session.proxies.update(proxies)
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(pool_size, 4), max_retries=0)
    session.mount("https://", adapter)
    # Plain http is never used for Graph/Entra; mounting nothing for it keeps requests' default,
    # and auth.py / client refuse non-https URLs before any request is made.
    session.headers["User-Agent"] = USER_AGENT
    return session
