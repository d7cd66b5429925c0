"""Step 2 of checking a sidecar's peer: its leaf certificate as an X.509-SVID, and revocation.

Python's ``ssl`` module cannot run a custom verification callback; OpenSSL checks the chain
during the handshake (:mod:`strongroom.mesh.proxy.tls`), and :class:`PeerVerifier` checks,
with ``cryptography``, right after it and on every connection (resumed or not): the leaf has
exactly one URI SAN and it is a SPIFFE ID of the configured trust domain; it is not a CA;
it is valid now; its ID is the expected peer or on the listener's allow-list (deny by
default); the revocation hook does not list it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography import x509

from strongroom.errors import ValidationError
from strongroom.mesh.identity.spiffe_id import SpiffeId

PEER_CACHE_SIZE = 4096
"""Parsed peer certificates remembered (by DER) so a new connection costs one dict lookup."""


class RevocationCheck(Protocol):
    """Whether an identity is revoked (:class:`~strongroom.mesh.MeshCA` is one)."""

    def is_revoked(self, subject: str, /) -> bool:
        """``True`` if the SPIFFE ID ``subject`` must be refused."""
        ...


class NoRevocation:
    """No identity is revoked (certificates still expire)."""

    def is_revoked(self, subject: str, /) -> bool:
        """Always ``False``."""
        return False


class RevocationFile:
    """Revoked SPIFFE IDs listed in a text file, one per line (``#`` starts a comment).

    The file is reread when its modification time changes, checked at most every
    ``interval`` seconds. A missing file means nothing is revoked; an unreadable one keeps
    the last list.
    """

    def __init__(self, path: Path, *, interval: float = 1.0) -> None:
        self._path = path
        self._interval = interval
        self._lock = threading.Lock()
        self._checked = float("-inf")
        self._stamp: int | None = None
        self._revoked: frozenset[str] = frozenset()

    def _refresh(self) -> None:
        try:
            stamp: int | None = self._path.stat().st_mtime_ns
        except FileNotFoundError:
            stamp = None
        if stamp == self._stamp:
            return
        if stamp is None:
            self._stamp, self._revoked = None, frozenset()
            return
        with contextlib.suppress(OSError):
            lines = self._path.read_text("utf-8").splitlines()
            ids = (line.split("#", 1)[0].strip() for line in lines)
            self._stamp, self._revoked = stamp, frozenset(i for i in ids if i)

    def is_revoked(self, subject: str, /) -> bool:
        """Whether ``subject`` is listed (rereading the file if due)."""
        now = time.monotonic()
        if now - self._checked >= self._interval:
            with self._lock:
                self._checked = now
                self._refresh()
        return subject in self._revoked


@dataclass(frozen=True, slots=True)
class PeerCert:
    """What the proxy needs of a peer's leaf certificate."""

    spiffe_id: str
    trust_domain: str
    serial: int
    not_before: float
    not_after: float


def read_peer(der: bytes) -> PeerCert | str:
    """Parse a peer leaf certificate as an X.509-SVID; a ``str`` is the reason it is not one."""
    try:
        cert = x509.load_der_x509_certificate(der)
        try:
            basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
            if basic.ca:
                return "peer certificate is a CA certificate"
        except x509.ExtensionNotFound:
            pass
        try:
            sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return "peer certificate has no URI SAN"
        uris = sans.get_values_for_type(x509.UniformResourceIdentifier)
        if len(uris) != 1:
            return f"peer certificate has {len(uris)} URI SANs, not exactly one"
        try:
            sid = SpiffeId.parse(uris[0])
        except ValidationError as exc:
            return f"peer URI SAN is not a SPIFFE ID: {exc.message}"
        return PeerCert(
            spiffe_id=str(sid),
            trust_domain=sid.trust_domain.name,
            serial=cert.serial_number,
            not_before=cert.not_valid_before_utc.timestamp(),
            not_after=cert.not_valid_after_utc.timestamp(),
        )
    except ValueError as exc:
        return f"peer certificate unreadable: {exc}"


class PeerVerifier:
    """Step 2 of the peer check (see the module docstring), with a parse cache."""

    def __init__(
        self,
        trust_domain: str,
        revocation: RevocationCheck,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._trust_domain = trust_domain
        self._revocation = revocation
        self._clock = clock
        self._cache: dict[bytes, PeerCert | str] = {}

    def check(self, der: bytes | None, allowed: frozenset[str]) -> tuple[PeerCert | None, str]:
        """``(peer, "")`` if the peer may pass, else ``(peer or None, reason)``."""
        if der is None:
            return None, "peer sent no certificate"
        peer = self._cache.get(der)
        if peer is None:
            peer = read_peer(der)
            if len(self._cache) >= PEER_CACHE_SIZE:
                self._cache.clear()
            self._cache[der] = peer
        if isinstance(peer, str):
            return None, peer
        if peer.trust_domain != self._trust_domain:
            return peer, f"peer is in trust domain {peer.trust_domain}, not {self._trust_domain}"
        now = self._clock()
        if not peer.not_before <= now <= peer.not_after:
            return peer, "peer certificate is not valid now"
        if peer.spiffe_id not in allowed:
            return peer, "peer SPIFFE ID is not allowed here"
        if self._revocation.is_revoked(peer.spiffe_id):
            return peer, "peer SPIFFE ID is revoked"
        return peer, ""
