"""What one ``strongroom server`` run is told: where its data is, where and how it listens."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from strongroom.kms.audit_log import MAX_PENDING as MAX_PENDING
from strongroom.server.guard import ConnectionLimits

DEFAULT_LIMITS = ConnectionLimits()

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8443
DEFAULT_REGION = "us-east-1"
AUDIT_FLUSH_SECONDS = 0.2
"""How often each process appends its queued audit events (well within one second)."""
MAINTENANCE_SECONDS = 60.0
"""How often each process rotates due keys, shreds keys past deletion, renews its cert."""
GRACEFUL_SECONDS = 30.0
"""How long a shutdown waits for requests in flight before it cancels them."""
ACCESS_KEY_TTL_SECONDS = 5.0
"""How long a process reuses an access key it looked up (so a revocation takes this long)."""


HOT_OPERATIONS = frozenset(
    {
        "Decrypt",
        "Encrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateRandom",
        "ReEncrypt",
        "GenerateMac",
        "VerifyMac",
        "DescribeKey",
    }
)
"""Operations that read a record or two and do symmetric crypto: fast enough to run inline."""


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Everything a server process (the supervisor or one worker) needs to start.

    ``store_url`` may hold a database password, so :meth:`__repr__` leaves it out. The
    settings are picklable: worker processes receive them at spawn.
    """

    data_dir: Path
    store_url: str
    root_spec: str
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    workers: int = 1
    insecure_http: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_sans: tuple[str, ...] = ()
    audit_flush_seconds: float = AUDIT_FLUSH_SECONDS
    maintenance_seconds: float = MAINTENANCE_SECONDS
    graceful_seconds: float = GRACEFUL_SECONDS
    access_key_ttl_seconds: float = ACCESS_KEY_TTL_SECONDS
    access_log: bool = False
    log_level: str = "info"
    limits: ConnectionLimits = DEFAULT_LIMITS
    audit_fail_open: bool = False
    """``--audit-failure open``: serve on when the audit log cannot be written."""
    audit_backlog: int = MAX_PENDING
    """Audit events that may wait unwritten before operations are refused (or dropped)."""

    def __repr__(self) -> str:
        return (
            f"ServerSettings(data_dir={str(self.data_dir)!r}, host={self.host!r}, "
            f"port={self.port}, workers={self.workers}, insecure_http={self.insecure_http})"
        )

    @property
    def scheme(self) -> str:
        """``https``, or ``http`` with ``--insecure-http``."""
        return "http" if self.insecure_http else "https"

    @property
    def uses_instance_ca(self) -> bool:
        """Whether the server certificate comes from the instance CA (not the operator)."""
        return not self.insecure_http and self.tls_cert is None

    @property
    def inline_operations(self) -> frozenset[str]:
        """Operations served on the event loop; every other one runs in a thread pool.

        With SQLite, the hot operations read at most a record or two, in microseconds,
        less than a hand-off to a thread costs (~100 us). Writes (an fsync) and slow ones
        (RSA key generation) go to the pool so they never stall the loop. With a
        networked store every operation goes to the pool: a read waits on the network,
        and on an unreachable database, for its timeout.
        """
        if self.store_url.startswith(("postgresql://", "postgres://")):
            return frozenset()
        return HOT_OPERATIONS

    def endpoint(self, port: int) -> str:
        """The URL clients use for this server listening on ``port``."""
        host = self.host
        if host in ("0.0.0.0", ""):  # noqa: S104 - a wildcard listener: name the loopback
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"{self.scheme}://{host}:{port}"
