"""Local CA and loopback server certificate (trustme), kept in the state dir so clients keep trusting it."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography import x509


@dataclass(frozen=True)
class TlsFiles:
    ca_file: Path
    cert_file: Path
    key_file: Path


def _cert_still_valid(cert_file: Path, margin_days: int = 7) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    except (OSError, ValueError):
        return False
    return cert.not_valid_after_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=margin_days)


def ensure_tls(state_dir: Path) -> TlsFiles:
    """Reuse DIR/ca.pem + server cert when present and valid; otherwise make new ones."""
    state_dir = Path(state_dir)
    files = TlsFiles(state_dir / "ca.pem", state_dir / "server-cert.pem", state_dir / "server-key.pem")
    if all(p.exists() for p in (files.ca_file, files.cert_file, files.key_file)) and _cert_still_valid(
        files.cert_file
    ):
        return files
    ca = trustme.CA(organization_name="xts sandbox local CA")
    leaf = ca.issue_cert(
        "127.0.0.1", "localhost", "::1",
        not_after=dt.datetime.now(dt.UTC) + dt.timedelta(days=825),
    )
    ca.cert_pem.write_to_path(str(files.ca_file))
    files.cert_file.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    fd = os.open(files.key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a renewed certificate reuses the path: keep the key private whatever its old mode
    with os.fdopen(fd, "wb") as fh:
        fh.write(leaf.private_key_pem.bytes())
    return files
