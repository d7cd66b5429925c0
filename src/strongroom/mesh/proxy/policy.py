"""The sidecar proxy's policy file (YAML), validated into frozen values.

Example (every key is documented in ``docs/mesh.md``, "Sidecar and egress")::

    trust_domain: example.org
    svid:
      workload_api: unix:///run/strongroom/agent.sock   # or:
      # files: {cert: svid.pem, key: svid_key.pem, bundle: bundle.pem, poll_seconds: 5}
    revocation_file: /run/strongroom/revoked.txt        # optional
    session_resumption: true                            # optional
    keep_tls_buffers: true                              # optional
    inbound:
      - name: api
        listen: 0.0.0.0:15443
        upstream: 127.0.0.1:8080
        allow: [spiffe://example.org/web]
    outbound:
      - name: db
        listen: 127.0.0.1:15432
        peer: db.internal:15443
        peer_id: spiffe://example.org/db
        pool_size: 4          # optional: ready mTLS connections kept (0 = none)
        pool_max_idle: 30     # optional: seconds a ready connection may wait

Deny by default: an inbound listener without ``allow`` entries refuses everyone; an allowed
ID must belong to ``trust_domain``. Errors name the file, line and key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from strongroom.errors import ValidationError
from strongroom.mesh.identity.spiffe_id import SpiffeId, TrustDomain
from strongroom.mesh.proxy.yaml_config import Address, Field, load_yaml, parse_yaml

DEFAULT_POOL_SIZE = 4
DEFAULT_POOL_MAX_IDLE = 30.0
MAX_POOL_SIZE = 256


@dataclass(frozen=True, slots=True)
class InboundListener:
    """Terminates mTLS on ``listen`` and relays allowed callers to ``upstream``."""

    name: str
    listen: Address
    upstream: Address
    allow: frozenset[str]


@dataclass(frozen=True, slots=True)
class OutboundListener:
    """Accepts plaintext on ``listen`` (loopback) and relays it over mTLS to ``peer``."""

    name: str
    listen: Address
    peer: Address
    peer_id: str
    pool_size: int = DEFAULT_POOL_SIZE
    pool_max_idle: float = DEFAULT_POOL_MAX_IDLE


@dataclass(frozen=True, slots=True)
class SvidConfig:
    """Where the SVID comes from: a Workload API socket, or PEM files."""

    workload_api: str | None = None
    cert: Path | None = None
    key: Path | None = None
    bundle: Path | None = None
    poll_seconds: float = 5.0


@dataclass(frozen=True, slots=True)
class ProxyPolicy:
    """The whole sidecar configuration."""

    trust_domain: str
    svid: SvidConfig
    inbound: tuple[InboundListener, ...] = ()
    outbound: tuple[OutboundListener, ...] = ()
    revocation_file: Path | None = None
    session_resumption: bool = True
    keep_tls_buffers: bool = True


def _spiffe_id(field: Field, trust_domain: str) -> str:
    try:
        sid = SpiffeId.parse(field.string())
    except ValidationError as exc:
        raise field.error(exc.message) from None
    if sid.trust_domain.name != trust_domain:
        raise field.error(f"{sid} is not in trust domain {trust_domain}")
    if not sid.path:
        raise field.error("a workload's SPIFFE ID has a path")
    return str(sid)


def _svid(field: Field, base: Path) -> SvidConfig:
    keys = field.mapping((), ("workload_api", "files"))
    if ("workload_api" in keys) == ("files" in keys):
        raise field.error("give exactly one of 'workload_api' or 'files'")
    if "workload_api" in keys:
        socket = keys["workload_api"].string()
        if not socket.startswith(("unix:", "tcp:")):
            raise keys["workload_api"].error("expected unix:///path/to/socket")
        return SvidConfig(workload_api=socket)
    files = keys["files"].mapping(("cert", "key", "bundle"), ("poll_seconds",))
    poll = files["poll_seconds"].number(0.01, 3600) if "poll_seconds" in files else 5.0
    return SvidConfig(
        cert=files["cert"].path_value(base),
        key=files["key"].path_value(base),
        bundle=files["bundle"].path_value(base),
        poll_seconds=poll,
    )


def _names(items: list[tuple[Field, str]]) -> None:
    seen: set[str] = set()
    for field, name in items:
        if name in seen:
            raise field.error(f"listener name {name!r} is used twice")
        seen.add(name)


def _inbound(field: Field, trust_domain: str) -> InboundListener:
    keys = field.mapping(("name", "listen", "upstream"), ("allow",))
    allow = keys["allow"].sequence() if "allow" in keys else []
    return InboundListener(
        name=keys["name"].string(),
        listen=keys["listen"].address(allow_port_zero=True),
        upstream=keys["upstream"].address(),
        allow=frozenset(_spiffe_id(item, trust_domain) for item in allow),
    )


def _outbound(field: Field, trust_domain: str) -> OutboundListener:
    keys = field.mapping(("name", "listen", "peer", "peer_id"), ("pool_size", "pool_max_idle"))
    return OutboundListener(
        name=keys["name"].string(),
        listen=keys["listen"].address(allow_port_zero=True),
        peer=keys["peer"].address(),
        peer_id=_spiffe_id(keys["peer_id"], trust_domain),
        pool_size=(
            keys["pool_size"].integer(0, MAX_POOL_SIZE)
            if "pool_size" in keys
            else DEFAULT_POOL_SIZE
        ),
        pool_max_idle=(
            keys["pool_max_idle"].number(0.1, 86400)
            if "pool_max_idle" in keys
            else DEFAULT_POOL_MAX_IDLE
        ),
    )


def policy_from_field(root: Field, base: Path) -> ProxyPolicy:
    """Validate a composed YAML document as a :class:`ProxyPolicy`."""
    keys = root.mapping(
        ("trust_domain", "svid"),
        ("inbound", "outbound", "revocation_file", "session_resumption", "keep_tls_buffers"),
    )
    td_field = keys["trust_domain"]
    try:
        trust_domain = TrustDomain.parse(td_field.string()).name
    except ValidationError as exc:
        raise td_field.error(exc.message) from None
    inbound_fields = keys["inbound"].sequence() if "inbound" in keys else []
    outbound_fields = keys["outbound"].sequence() if "outbound" in keys else []
    if not inbound_fields and not outbound_fields:
        raise root.error("no listeners: give 'inbound' or 'outbound' entries")
    inbound = tuple(_inbound(f, trust_domain) for f in inbound_fields)
    outbound = tuple(_outbound(f, trust_domain) for f in outbound_fields)
    _names(
        [(f, i.name) for f, i in zip(inbound_fields, inbound, strict=True)]
        + [(f, o.name) for f, o in zip(outbound_fields, outbound, strict=True)]
    )
    return ProxyPolicy(
        trust_domain=trust_domain,
        svid=_svid(keys["svid"], base),
        inbound=inbound,
        outbound=outbound,
        revocation_file=(
            keys["revocation_file"].path_value(base) if "revocation_file" in keys else None
        ),
        session_resumption=(
            keys["session_resumption"].boolean() if "session_resumption" in keys else True
        ),
        keep_tls_buffers=(
            keys["keep_tls_buffers"].boolean() if "keep_tls_buffers" in keys else True
        ),
    )


def load_policy(path: Path) -> ProxyPolicy:
    """Read and validate the policy file at ``path``."""
    return policy_from_field(load_yaml(path), path.parent)


def parse_policy(text: str, source: str = "<policy>", base: Path | None = None) -> ProxyPolicy:
    """Validate policy YAML ``text`` (relative paths resolve against ``base``)."""
    return policy_from_field(parse_yaml(text, source), base or Path.cwd())
