"""Throwaway TLS material for fake HTTPS servers (via `trustme`).

A fake provider has to speak real HTTPS: fal-client always builds `https://` URLs. Clients
trust the fake by pointing `SSL_CERT_FILE` at the CA PEM written here (httpx reads it when
`trust_env` is on, which is the default). Nothing here touches the system trust store.

    bundle = make_tls()                 # CA + server cert for 127.0.0.1 and localhost
    bundle.ca_file                      # PEM for SSL_CERT_FILE / httpx verify=
    bundle.server_context               # ssl.SSLContext for the server socket
    bundle.client_context()             # ssl.SSLContext trusting only this CA
"""

from __future__ import annotations

import shutil
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import trustme

DEFAULT_HOSTS: tuple[str, ...] = ("127.0.0.1", "localhost")


def make_ca() -> trustme.CA:
    """A fresh certificate authority that exists only in memory (and wherever you write it)."""
    return trustme.CA(organization_name="studio tests fake CA")


def write_ca_pem(ca: trustme.CA, path: str | Path) -> Path:
    """Write the CA certificate (PEM, public part only) to `path`; returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    ca.cert_pem.write_to_path(str(target))
    return target


def server_context(ca: trustme.CA, hosts: Sequence[str] = DEFAULT_HOSTS) -> ssl.SSLContext:
    """A server-side SSLContext with a leaf certificate for `hosts`, issued by `ca`."""
    cert = ca.issue_cert(*hosts)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    """A client-side SSLContext that trusts only `ca` (for direct httpx/urllib use)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(context)
    return context


@dataclass
class TLSBundle:
    """A CA, its PEM on disk and a matching server context. `cleanup()` removes the PEM dir
    if this bundle created it."""

    ca: trustme.CA
    ca_file: Path
    server_context: ssl.SSLContext
    hosts: tuple[str, ...] = DEFAULT_HOSTS
    _owned_dir: Path | None = field(default=None, repr=False)

    def client_context(self) -> ssl.SSLContext:
        return client_context(self.ca)

    def cleanup(self) -> None:
        if self._owned_dir is not None:
            shutil.rmtree(self._owned_dir, ignore_errors=True)
            self._owned_dir = None


def make_tls(
    directory: str | Path | None = None,
    *,
    hosts: Sequence[str] = DEFAULT_HOSTS,
    ca: trustme.CA | None = None,
) -> TLSBundle:
    """CA (new unless given) + server cert for `hosts`; the CA PEM goes to `directory`
    (a fresh temporary directory when None, removed by `TLSBundle.cleanup()`)."""
    ca = ca or make_ca()
    owned: Path | None = None
    if directory is None:
        owned = Path(tempfile.mkdtemp(prefix="fake-ca-"))
        directory = owned
    ca_file = write_ca_pem(ca, Path(directory) / "fake-ca.pem")
    return TLSBundle(
        ca=ca,
        ca_file=ca_file,
        server_context=server_context(ca, hosts),
        hosts=tuple(hosts),
        _owned_dir=owned,
    )
