"""What the egress proxy checks about TLS: the client's ClientHello and the upstream's chain.

- :func:`parse_client_hello` is pure (bytes in, result out) and reads only what it needs:
  that the first bytes are TLS handshake records carrying a ClientHello, and its SNI name.
  It never raises on any input; it answers "need more bytes", a reason, or the hello.
- :class:`UpstreamVerifier` proves that the upstream at an address holds a certificate for
  the host name that chains to the configured trust store (or the system one): it makes a
  TLS handshake of its own with full verification (chain, validity, host name) and caches a
  success for ``cache_seconds`` per (host, address, port).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

RECORD_HANDSHAKE = 0x16
RECORD_ALERT = 0x15
HANDSHAKE_CLIENT_HELLO = 0x01
EXT_SERVER_NAME = 0x0000
MAX_RECORD = 16384 + 2048
UNREACHABLE = "upstream unreachable"
MAX_HELLO = 1 << 16
"""A ClientHello larger than this (over several records) is refused."""


@dataclass(frozen=True, slots=True)
class ClientHello:
    """The part of a ClientHello the egress needs."""

    server_name: str | None


class _Reader:
    """Bounds-checked reads over a byte string (raising ``ValueError`` past its end)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self._pos + n > len(self._data):
            raise ValueError("truncated")
        out = self._data[self._pos : self._pos + n]
        self._pos += n
        return out

    def number(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def take_all(self) -> bytes:
        return self.take(self.left)

    def vector(self, length_bytes: int) -> _Reader:
        return _Reader(self.take(self.number(length_bytes)))

    @property
    def left(self) -> int:
        return len(self._data) - self._pos


def _handshake_bytes(data: bytes) -> bytes | str:
    """Concatenated payloads of the leading handshake records; a ``str`` is a reason."""
    out = bytearray()
    pos = 0
    while pos < len(data):
        header = data[pos : pos + 5]
        if header[0] != RECORD_HANDSHAKE:
            if out:
                break
            return "first bytes are not a TLS handshake record"
        if len(header) >= 2 and header[1] != 0x03:
            return "not a TLS record version"
        if len(header) < 5:
            break
        length = int.from_bytes(header[3:5], "big")
        if length == 0 or length > MAX_RECORD:
            return "bad TLS record length"
        payload = data[pos + 5 : pos + 5 + length]
        out += payload
        if len(payload) < length:
            break
        pos += 5 + length
    return bytes(out)


def _server_name(body: bytes) -> str | None:
    r = _Reader(body)
    r.take(2 + 32)  # legacy_version, random
    r.vector(1)  # legacy_session_id
    suites = r.vector(2)
    if suites.left == 0 or suites.left % 2:
        raise ValueError("bad cipher suites")
    r.vector(1)  # legacy_compression_methods
    if r.left == 0:
        return None
    extensions = r.vector(2)
    while extensions.left:
        kind = extensions.number(2)
        ext = extensions.vector(2)
        if kind != EXT_SERVER_NAME:
            continue
        names = ext.vector(2)
        while names.left:
            name_type = names.number(1)
            name = names.vector(2).take_all()
            if name_type == 0:
                return name.decode("ascii")
        return None
    return None


def parse_client_hello(data: bytes) -> ClientHello | str | None:
    """Read a ClientHello from the first bytes of a connection.

    Returns ``None`` if more bytes are needed, a ``str`` (the reason) if these bytes are not
    the start of a TLS connection, else the :class:`ClientHello`.
    """
    if not data:
        return None
    handshake = _handshake_bytes(data[: MAX_HELLO + 5 * 8])
    if isinstance(handshake, str):
        return handshake
    if not handshake:
        return None
    if handshake[0] != HANDSHAKE_CLIENT_HELLO:
        return "first handshake message is not a ClientHello"
    if len(handshake) < 4:
        return None
    length = int.from_bytes(handshake[1:4], "big")
    if length > MAX_HELLO:
        return "ClientHello too large"
    if len(handshake) < 4 + length:
        return None if len(data) < MAX_HELLO + 5 * 8 else "ClientHello too large"
    try:
        return ClientHello(_server_name(handshake[4 : 4 + length]))
    except (ValueError, UnicodeDecodeError):
        return "malformed ClientHello"


def verification_context(ca_file: Path | None) -> ssl.SSLContext:
    """Full verification: ``ca_file`` if given (only it), else the system trust store."""
    ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class UpstreamVerifier:
    """Verifies upstream TLS servers by a handshake of its own; caches successes."""

    def __init__(
        self,
        ca_file: Path | None,
        *,
        cache_seconds: float = 60.0,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ctx = verification_context(ca_file)
        self._cache_seconds = cache_seconds
        self._timeout = timeout
        self._clock = clock
        self._verified: dict[tuple[str, str, int], float] = {}
        self._inflight: dict[tuple[str, str, int], asyncio.Future[str]] = {}

    async def verify(self, host: str, address: str, port: int) -> str:
        """``""`` if ``address:port`` proves to be ``host``, else the reason it did not."""
        key = (host.lower(), address, port)
        until = self._verified.get(key)
        if until is not None and self._clock() < until:
            return ""
        running = self._inflight.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            reason = await self._handshake(host, address, port)
            if not reason:
                if len(self._verified) > 10_000:
                    self._verified.clear()
                self._verified[key] = self._clock() + self._cache_seconds
            future.set_result(reason)
            return reason
        finally:
            del self._inflight[key]

    async def _handshake(self, host: str, address: str, port: int) -> str:
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await asyncio.wait_for(
                loop.create_connection(
                    asyncio.Protocol,
                    address,
                    port,
                    ssl=self._ctx,
                    server_hostname=host,
                    ssl_handshake_timeout=self._timeout,
                ),
                self._timeout,
            )
        except ssl.SSLCertVerificationError as exc:
            return f"upstream certificate not verified: {exc.verify_message}"
        except ssl.SSLError as exc:
            return f"upstream TLS handshake failed: {exc.reason or exc}"
        except TimeoutError:
            return f"{UNREACHABLE}: TLS handshake timed out"
        except OSError as exc:
            return f"{UNREACHABLE}: {exc.strerror or exc}"
        transport.close()
        return ""
