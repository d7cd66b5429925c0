"""The egress proxy's configuration file (YAML), validated into frozen values.

Example::

    listen: 127.0.0.1:3128
    allow:                       # host:port patterns; nothing else is reachable
      - api.github.com:443
      - "*.s3.eu-west-1.amazonaws.com:443"   # '*.' is exactly one more label
    ca_file: /etc/strongroom/egress-ca.pem   # optional: default is the system trust store
    verify_cache_seconds: 60                 # optional: how long a verified upstream is trusted
    connect_timeout: 10                      # optional: seconds for DNS, connect and handshakes

Host names compare case-insensitively; a pattern's port is a number or ``*``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from strongroom.mesh.proxy.yaml_config import Address, Field, load_yaml, parse_yaml

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOST = re.compile(rf"(\*\.)?{_LABEL}(\.{_LABEL})*\.?|\[[0-9a-f:.]+\]|[0-9.]+")


@dataclass(frozen=True, slots=True)
class HostPattern:
    """``host:port`` where host may start with ``*.`` (one label) and port may be ``*``."""

    host: str
    port: int | None

    @classmethod
    def parse(cls, text: str) -> HostPattern:
        """Parse a pattern (``ValueError`` with a reason if malformed)."""
        host, sep, port = text.strip().lower().rpartition(":")
        if not sep or not host:
            raise ValueError("expected host:port")
        if _HOST.fullmatch(host) is None:
            raise ValueError(f"bad host {host!r}")
        if port == "*":
            return cls(host.strip("[]").rstrip("."), None)
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"bad port {port!r}")
        return cls(host.strip("[]").rstrip("."), int(port))

    def matches(self, host: str, port: int) -> bool:
        """Whether ``host:port`` (host as the client wrote it) fits this pattern."""
        if self.port is not None and port != self.port:
            return False
        name = host.lower().rstrip(".")
        if self.host.startswith("*."):
            head, _, tail = name.partition(".")
            return bool(head) and tail == self.host[2:]
        return name == self.host

    def __str__(self) -> str:
        return f"{self.host}:{'*' if self.port is None else self.port}"


@dataclass(frozen=True, slots=True)
class EgressConfig:
    """The whole egress configuration."""

    listen: Address
    allow: tuple[HostPattern, ...]
    ca_file: Path | None = None
    verify_cache_seconds: float = 60.0
    connect_timeout: float = 10.0

    def allowed(self, host: str, port: int) -> bool:
        """Whether the allow-list lets a client reach ``host:port``."""
        return any(p.matches(host, port) for p in self.allow)


def _pattern(field: Field) -> HostPattern:
    try:
        return HostPattern.parse(field.string())
    except ValueError as exc:
        raise field.error(f"not a host:port pattern: {exc}") from None


def egress_from_field(root: Field, base: Path) -> EgressConfig:
    """Validate a composed YAML document as an :class:`EgressConfig`."""
    keys = root.mapping(("listen", "allow"), ("ca_file", "verify_cache_seconds", "connect_timeout"))
    allow = tuple(_pattern(item) for item in keys["allow"].sequence())
    if not allow:
        raise keys["allow"].error("the allow-list is empty: nothing could be reached")
    ca_file = keys["ca_file"].path_value(base) if "ca_file" in keys else None
    if ca_file is not None and not ca_file.is_file():
        raise keys["ca_file"].error(f"no such file: {ca_file}")
    return EgressConfig(
        listen=keys["listen"].address(allow_port_zero=True),
        allow=allow,
        ca_file=ca_file,
        verify_cache_seconds=(
            keys["verify_cache_seconds"].number(0, 86400)
            if "verify_cache_seconds" in keys
            else 60.0
        ),
        connect_timeout=(
            keys["connect_timeout"].number(0.1, 300) if "connect_timeout" in keys else 10.0
        ),
    )


def load_egress_config(path: Path) -> EgressConfig:
    """Read and validate the egress configuration at ``path``."""
    return egress_from_field(load_yaml(path), path.parent)


def parse_egress_config(
    text: str, source: str = "<egress>", base: Path | None = None
) -> EgressConfig:
    """Validate egress YAML ``text``."""
    return egress_from_field(parse_yaml(text, source), base or Path.cwd())
