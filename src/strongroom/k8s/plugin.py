"""The Kubernetes KMS v2 plugin's logic, free of gRPC: Status, Encrypt and Decrypt.

kube-apiserver generates a 32-byte DEK seed, asks the plugin to ``Encrypt`` it, and stores
the returned ciphertext, ``key_id`` and annotations beside every object it encrypts with
keys derived from that seed. :class:`KmsPlugin` answers:

- ``Encrypt``: ``Encrypt`` of the seed under the configured KMS key with the encryption
  context :data:`ENCRYPTION_CONTEXT`. The ciphertext is the KMS ciphertext blob itself
  (under 1 KiB: :data:`MAX_CIPHERTEXT_BYTES`); one annotation,
  ``format.kms.strongroom.dev`` = ``1``, names that layout.
- ``Decrypt``: ``Decrypt`` with the same context, naming the key of the request's
  ``key_id``, so it works for every earlier version of the key (and for objects written
  before an alias was pointed at another key).
- ``Status``: version ``v2``; ``healthz`` ``ok`` only while an encrypt/decrypt round trip
  through the key service succeeds; ``key_id`` = ``<key ARN>#v<version>``, which changes
  when the key is rotated (or the alias moves), so kube-apiserver writes with a new DEK
  seed and reports older objects as stale. Both are cached for ``health_ttl`` seconds.

The request ``uid`` is only logged (by :mod:`strongroom.k8s.server`). Plaintexts and seeds
are never logged.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from strongroom.errors import KMSInternalError, StrongroomError, ValidationError
from strongroom.k8s.backend import KeyBackend, KeyVersion
from strongroom.k8s.retry import Retrier, RetryPolicy

if TYPE_CHECKING:
    from strongroom.k8s.metrics import PluginMetrics

API_VERSION = "v2"
"""``StatusResponse.version``: the KMS plugin API version kube-apiserver is configured for."""
HEALTHZ_OK = "ok"
ENCRYPTION_CONTEXT: Mapping[str, str] = MappingProxyType({"k8s-kms-plugin": "v2"})
"""Encryption context of every DEK seed ciphertext (stable: changing it orphans them)."""
PROBE_CONTEXT: Mapping[str, str] = MappingProxyType({"k8s-kms-plugin": "healthz"})
"""Encryption context of the health probe's round trip (never a seed's)."""
FORMAT_ANNOTATION = "format.kms.strongroom.dev"
"""Annotation naming the ciphertext layout (keys must be DNS names, RFC 1123)."""
FORMAT_V1 = b"1"
"""Layout 1: the ciphertext is an AWS KMS ciphertext blob, context :data:`ENCRYPTION_CONTEXT`."""
MAX_PLAINTEXT_BYTES = 512
"""Largest plaintext accepted (kube-apiserver sends 32 bytes)."""
MAX_CIPHERTEXT_BYTES = 1024
"""kube-apiserver refuses a ciphertext (encrypted DEK source) larger than 1 kB."""
MAX_KEY_ID_BYTES = 1024
"""kube-apiserver refuses a key_id larger than 1 kB."""
DEFAULT_HEALTH_TTL = 5.0
MAX_HEALTHZ_CHARS = 300

_KEY_ID = re.compile(r"(arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]{1,64})#v(\d{1,10})")
_log = logging.getLogger("strongroom.k8s")


def format_key_id(version: KeyVersion) -> str:
    """The plugin ``key_id`` of a key version: ``<key ARN>#v<version>``."""
    return f"{version.key_arn}#v{version.version}"


def parse_key_id(key_id: str) -> KeyVersion:
    """Split a plugin ``key_id``; raise ``ValidationError`` if it is not one."""
    match = _KEY_ID.fullmatch(key_id)
    if match is None:
        raise ValidationError("The key_id is not one this plugin issued.")
    return KeyVersion(match.group(1), int(match.group(2)))


@dataclass(frozen=True, slots=True)
class PluginStatus:
    """What ``Status`` answers (besides the version)."""

    healthz: str
    key_id: str

    @property
    def healthy(self) -> bool:
        """Whether ``healthz`` is ``ok``."""
        return self.healthz == HEALTHZ_OK


@dataclass(frozen=True, slots=True)
class Encrypted:
    """What ``Encrypt`` answers."""

    ciphertext: bytes
    key_id: str
    annotations: Mapping[str, bytes] = field(
        default_factory=lambda: MappingProxyType({FORMAT_ANNOTATION: FORMAT_V1})
    )


def _describe(exc: StrongroomError) -> str:
    text = f"{exc.aws_type}: {exc.message}" if exc.message else exc.aws_type
    return " ".join(text.split())[:MAX_HEALTHZ_CHARS]


class KmsPlugin:
    """Status, Encrypt and Decrypt of the KMS v2 plugin over a :class:`KeyBackend`.

    ``key`` is the KMS key to encrypt under (id, ARN or ``alias/NAME``). ``health_ttl``
    is how long a Status answer and the current ``key_id`` are reused (0: never).
    ``clock`` is monotonic seconds; deadlines passed to the methods are on it. Thread
    safe: concurrent Status calls share one probe.
    """

    def __init__(
        self,
        backend: KeyBackend,
        key: str,
        *,
        health_ttl: float = DEFAULT_HEALTH_TTL,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        metrics: PluginMetrics | None = None,
    ) -> None:
        if not key:
            raise ValidationError("A KMS key is required.")
        self.backend = backend
        self.key = key
        self.health_ttl = health_ttl
        self._clock = clock
        self._metrics = metrics
        self._retrier = Retrier(
            retry or RetryPolicy(), clock=clock, sleep=sleep, on_retry=self._retried
        )
        self._lock = threading.Lock()
        self._status: PluginStatus | None = None
        self._status_at = 0.0
        self._version: KeyVersion | None = None
        self._version_at = 0.0

    # -- Status ---------------------------------------------------------------------------

    def status(self, deadline: float | None = None) -> PluginStatus:
        """``healthz`` and the current ``key_id``, probing the key service when stale."""
        with self._lock:
            if self._status is not None and self._fresh(self._status_at):
                return self._status
            status = self._probe(deadline)
            previous, self._status = self._status, status
            self._status_at = self._clock()
        if previous is None or previous.healthz != status.healthz:
            level = logging.INFO if status.healthy else logging.WARNING
            _log.log(level, "health", extra={"fields": {"healthz": status.healthz}})
        if self._metrics is not None:
            self._metrics.healthy.set(1 if status.healthy else 0)
        return status

    def _probe(self, deadline: float | None) -> PluginStatus:
        """Look up the key version, then encrypt and decrypt 32 random bytes."""
        try:
            version = self._refresh_version(deadline)
        except StrongroomError as exc:
            known = format_key_id(self._version) if self._version is not None else ""
            return PluginStatus(f"key service: {_describe(exc)}", known)
        key_id = format_key_id(version)
        probe = os.urandom(32)
        try:
            sealed = self._retrier.call(
                "Encrypt", lambda: self.backend.encrypt(self.key, probe, PROBE_CONTEXT), deadline
            )
            back = self._retrier.call(
                "Decrypt",
                lambda: self.backend.decrypt(sealed.ciphertext, PROBE_CONTEXT, sealed.key_arn),
                deadline,
            )
        except StrongroomError as exc:
            return PluginStatus(f"key service: {_describe(exc)}", key_id)
        if back != probe:
            return PluginStatus("key service: the round trip returned other bytes", key_id)
        return PluginStatus(HEALTHZ_OK, key_id)

    # -- key version ----------------------------------------------------------------------

    def _fresh(self, since: float) -> bool:
        return self.health_ttl > 0 and self._clock() - since < self.health_ttl

    def _refresh_version(self, deadline: float | None) -> KeyVersion:
        """Look the key's ARN and version up now (caller holds the lock)."""
        version = self._retrier.call(
            "KeyVersion", lambda: self.backend.key_version(self.key), deadline
        )
        if self._version is not None and version != self._version:
            _log.info(
                "key changed",
                extra={
                    "fields": {
                        "old_key_id": format_key_id(self._version),
                        "key_id": format_key_id(version),
                    }
                },
            )
            if self._metrics is not None:
                self._metrics.key_changes.inc()
        self._version, self._version_at = version, self._clock()
        return version

    def current_version(self, deadline: float | None = None) -> KeyVersion:
        """The key version Encrypt names: the cached one while fresh, else looked up."""
        with self._lock:
            if self._version is not None and self._fresh(self._version_at):
                return self._version
            return self._refresh_version(deadline)

    # -- Encrypt / Decrypt ----------------------------------------------------------------

    def encrypt(self, plaintext: bytes, deadline: float | None = None) -> Encrypted:
        """Encrypt a DEK seed under the key; the ``key_id`` names the key version.

        The version is looked up before encrypting, so a rotation in between makes the
        ``key_id`` name the older version: kube-apiserver then sees the object as stale
        and rewrites it, never the other way round.
        """
        if not plaintext:
            raise ValidationError("The plaintext is empty.")
        if len(plaintext) > MAX_PLAINTEXT_BYTES:
            raise ValidationError(
                f"The plaintext is {len(plaintext)} bytes; at most {MAX_PLAINTEXT_BYTES} fit."
            )
        version = self.current_version(deadline)
        sealed = self._retrier.call(
            "Encrypt",
            lambda: self.backend.encrypt(self.key, plaintext, ENCRYPTION_CONTEXT),
            deadline,
        )
        if sealed.key_arn != version.key_arn:  # the alias moved to another key meanwhile
            with self._lock:
                version = self._refresh_version(deadline)
            if sealed.key_arn != version.key_arn:
                raise KMSInternalError("The key changed during the call; retry.")
        if len(sealed.ciphertext) > MAX_CIPHERTEXT_BYTES:
            raise KMSInternalError(
                f"The key service returned a {len(sealed.ciphertext)}-byte ciphertext; "
                f"kube-apiserver takes at most {MAX_CIPHERTEXT_BYTES}."
            )
        return Encrypted(sealed.ciphertext, format_key_id(version))

    def decrypt(
        self,
        ciphertext: bytes,
        key_id: str = "",
        annotations: Mapping[str, bytes] | None = None,
        deadline: float | None = None,
    ) -> bytes:
        """Decrypt a DEK seed ciphertext made by :meth:`encrypt` under any key version.

        ``key_id`` (as :meth:`encrypt` returned it) names the key the ciphertext must be
        under; empty means the configured key. A ``format`` annotation other than ``1``
        is refused; other annotations are ignored.
        """
        if not ciphertext:
            raise ValidationError("The ciphertext is empty.")
        if len(ciphertext) > MAX_CIPHERTEXT_BYTES:
            raise ValidationError("The ciphertext is larger than any this plugin makes.")
        layout = (annotations or {}).get(FORMAT_ANNOTATION, FORMAT_V1)
        if layout != FORMAT_V1:
            raise ValidationError(f"Unknown {FORMAT_ANNOTATION} annotation.")
        if len(key_id.encode("utf-8")) > MAX_KEY_ID_BYTES:
            raise ValidationError("The key_id is longer than 1 kB.")
        key = parse_key_id(key_id).key_arn if key_id else self.key
        return self._retrier.call(
            "Decrypt",
            lambda: self.backend.decrypt(ciphertext, ENCRYPTION_CONTEXT, key),
            deadline,
        )

    # -- plumbing -------------------------------------------------------------------------

    def _retried(self, operation: str, error: StrongroomError) -> None:
        _log.warning(
            "retrying key service call",
            extra={"fields": {"operation": operation, "error": error.aws_type}},
        )
        if self._metrics is not None:
            self._metrics.retries.labels(operation).inc()

    def close(self) -> None:
        """Close the backend."""
        self.backend.close()

    def __repr__(self) -> str:
        return f"KmsPlugin(key={self.key!r}, backend={self.backend!r})"
