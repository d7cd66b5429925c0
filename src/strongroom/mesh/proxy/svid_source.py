"""Where a sidecar gets its X.509-SVID and trust bundle, and learns that they changed.

An :class:`SvidSource` hands out the current :class:`SvidState` (the workload's SVID with its
private key, and the trust anchors to verify peers against) and calls subscribers when it
changes. The proxy builds fresh ``SSLContext`` objects on each change; connections opened
before keep the context they were made with, so rotation never drops a connection.

Implementations:

- :class:`WorkloadApiSvidSource`: the SPIFFE Workload API (a SPIRE agent, or
  ``strongroom mesh agent``) through py-spiffe's ``X509Source``, which streams a new SVID
  before the old one expires;
- :class:`FileSvidSource`: PEM files (chain, key, bundle), reread when they change, as
  written by ``spiffe-helper`` or a deployment tool;
- :class:`StaticSvidSource`: a value set by code (tests, or a process that holds a
  :class:`~strongroom.mesh.MeshCA` itself); :meth:`StaticSvidSource.update` rotates it.

Subscribers may be called from another thread; they must only schedule work.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from strongroom.errors import DependencyTimeoutError, ValidationError
from strongroom.mesh.identity.svid import X509Svid, spiffe_id_of

_log = logging.getLogger("strongroom.mesh.proxy.sidecar")

Subscriber = Callable[[], None]


@dataclass(frozen=True, slots=True)
class SvidState:
    """The workload's SVID (with its private key) and the trust anchors it verifies against."""

    svid: X509Svid
    bundle: tuple[x509.Certificate, ...]

    def __post_init__(self) -> None:
        if self.svid.private_key is None:
            raise ValidationError("a sidecar needs an SVID with its private key")
        if not self.bundle:
            raise ValidationError("the trust bundle is empty")

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("an SVID state holds a private key and cannot be pickled")

    def bundle_pem(self) -> str:
        """The trust anchors as PEM text (what ``load_verify_locations(cadata=...)`` takes)."""
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.bundle).decode(
            "ascii"
        )

    @property
    def serial_number(self) -> int:
        """The SVID leaf's serial number (identifies a rotation in logs)."""
        return self.svid.serial_number


def state_from_pem(chain_pem: bytes, key_pem: bytes, bundle_pem: bytes) -> SvidState:
    """Build an :class:`SvidState` from PEM: chain (leaf first), private key, trust bundle."""
    try:
        chain = tuple(x509.load_pem_x509_certificates(chain_pem))
        bundle = tuple(x509.load_pem_x509_certificates(bundle_pem))
        key = serialization.load_pem_private_key(key_pem, password=None)
    except ValueError as exc:
        raise ValidationError(f"cannot read the SVID, its key or the bundle: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValidationError("the SVID key must be an EC private key")
    return SvidState(X509Svid(spiffe_id_of(chain[0]), chain, key), bundle)


class SvidSource(Protocol):
    """The current SVID and trust bundle, with change notifications."""

    def current(self) -> SvidState:
        """The SVID and bundle to use for new connections now."""
        ...

    def subscribe(self, callback: Subscriber) -> None:
        """Call ``callback()`` (possibly from another thread) after each change."""
        ...

    def close(self) -> None:
        """Stop watching for changes."""
        ...


class _Subscribers:
    """A thread-safe list of callbacks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: list[Subscriber] = []

    def add(self, callback: Subscriber) -> None:
        with self._lock:
            self._callbacks.append(callback)

    def notify(self) -> None:
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            callback()


class StaticSvidSource:
    """An SVID set by code; :meth:`update` replaces it and notifies subscribers."""

    def __init__(self, state: SvidState) -> None:
        self._state = state
        self._subscribers = _Subscribers()

    def current(self) -> SvidState:
        """The SVID last set."""
        return self._state

    def update(self, state: SvidState) -> None:
        """Replace the SVID (and bundle) and tell the subscribers."""
        self._state = state
        self._subscribers.notify()

    def subscribe(self, callback: Subscriber) -> None:
        """Call ``callback()`` after each :meth:`update`."""
        self._subscribers.add(callback)

    def close(self) -> None:
        """Nothing to stop."""


class FileSvidSource:
    """PEM files, reread when their modification time or size changes.

    A half-written set of files (a chain whose key does not match, a torn write) is logged
    and skipped: the previous SVID stays in use until the files are consistent again.
    """

    def __init__(self, cert: Path, key: Path, bundle: Path, *, poll_seconds: float = 5.0) -> None:
        self._paths = (cert, key, bundle)
        self._poll = poll_seconds
        self._stamp = self._stamps()
        self._state = self._read()
        self._subscribers = _Subscribers()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _stamps(self) -> tuple[tuple[int, int], ...]:
        try:
            stats = [p.stat() for p in self._paths]
        except OSError as exc:
            raise ValidationError(f"cannot read an SVID file: {exc}") from None
        return tuple((s.st_mtime_ns, s.st_size) for s in stats)

    def _read(self) -> SvidState:
        cert, key, bundle = (p.read_bytes() for p in self._paths)
        state = state_from_pem(cert, key, bundle)
        leaf_key = state.svid.leaf.public_key()
        private = state.svid.private_key
        if private is None or leaf_key != private.public_key():
            raise ValidationError("the SVID's private key does not match its certificate")
        return state

    def current(self) -> SvidState:
        """The SVID last read."""
        return self._state

    def subscribe(self, callback: Subscriber) -> None:
        """Call ``callback()`` after each change; starts the watcher on first use."""
        self._subscribers.add(callback)
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="svid-file-watch", daemon=True)
            self._thread.start()

    def poll(self) -> bool:
        """Reread the files if they changed; return whether a new SVID was taken."""
        try:
            stamp = self._stamps()
            if stamp == self._stamp:
                return False
            state = self._read()
        except (OSError, ValidationError) as exc:
            _log.warning("svid files unreadable", extra={"fields": {"error": str(exc)}})
            return False
        self._stamp, self._state = stamp, state
        self._subscribers.notify()
        return True

    def _watch(self) -> None:
        while not self._stop.wait(self._poll):
            self.poll()

    def close(self) -> None:
        """Stop the watcher thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


@contextlib.contextmanager
def quiet_dsa_deprecation() -> Iterator[None]:
    """Silence ``cryptography`` 51's DSA deprecation warning while py-spiffe is imported.

    py-spiffe names ``dsa.DSAPublicKey`` in a type alias at import time, which prints
    ``CryptographyDeprecationWarning: DSA is deprecated`` on every start of the sidecar
    although no DSA key is ever used (SVIDs are P-256). Only that warning, only then.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="DSA is deprecated")
        yield


class WorkloadApiSvidSource:
    """The SPIFFE Workload API through py-spiffe's ``X509Source`` (PyPI ``spiffe``).

    ``socket`` is ``unix:///path`` (or ``None`` for ``SPIFFE_ENDPOINT_SOCKET``). The first
    SVID is fetched in the constructor (waiting up to ``timeout`` seconds); afterwards the
    source follows the agent's stream. The trust bundle is that of the SVID's trust domain.
    """

    def __init__(self, socket: str | None = None, *, timeout: float = 30.0) -> None:
        with quiet_dsa_deprecation():  # the gRPC client loads only when used
            from spiffe import X509Source
            from spiffe.errors import PySpiffeError

        try:
            self._source = X509Source(socket_path=socket, timeout_in_seconds=timeout)
        except PySpiffeError as exc:
            where = socket or "SPIFFE_ENDPOINT_SOCKET"
            raise DependencyTimeoutError(
                f"no SVID from the Workload API at {where}: {exc}"
            ) from None
        self._subscribers = _Subscribers()
        self._state = self._convert()
        self._source.subscribe_for_updates(self._changed)

    def _convert(self) -> SvidState:
        svid = self._source.svid
        chain = tuple(svid.cert_chain)
        key = svid.private_key
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValidationError("the Workload API handed out a non-EC SVID key")
        own = X509Svid(spiffe_id_of(chain[0]), chain, key)
        bundle = self._source.get_bundle_for_trust_domain(svid.spiffe_id.trust_domain)
        if bundle is None:
            raise ValidationError("the Workload API sent no bundle for the SVID's trust domain")
        return SvidState(own, tuple(bundle.x509_authorities))

    def _changed(self) -> None:
        try:
            self._state = self._convert()
        except ValidationError as exc:
            _log.warning("workload api update refused", extra={"fields": {"error": str(exc)}})
            return
        self._subscribers.notify()

    def current(self) -> SvidState:
        """The SVID last received."""
        return self._state

    def subscribe(self, callback: Subscriber) -> None:
        """Call ``callback()`` after each SVID or bundle the agent pushes."""
        self._subscribers.add(callback)

    def close(self) -> None:
        """Close the stream to the agent."""
        self._source.close()
