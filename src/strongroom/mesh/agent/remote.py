"""The mesh authority of a Strongroom server, for an agent on another machine.

``strongroom mesh agent --endpoint https://kms.internal:8443`` serves the Workload API to
the workloads of its own machine (it attests them by their peer credentials, locally, as
ever) and gets their SVIDs from the server's ``StrongroomMesh`` operations
(:mod:`strongroom.mesh.api_ops`), signed with an access key created with ``--mesh-agent``.
The agent makes each key pair itself and sends only the public key: private keys never
cross the network. Registration entries, revoked identities and the trust bundle are read
from the server and kept for ``refresh_s`` seconds (the Workload API rereads them on that
beat anyway), so a thousand idle workloads cost one request per beat, not a thousand.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from strongroom.awsjson.client import SignedJsonClient, reply_blob
from strongroom.errors import KMSInternalError, ValidationError
from strongroom.mesh.admin import entry_of_reply
from strongroom.mesh.api_ops import MESH_TARGET_PREFIX
from strongroom.mesh.identity.jwt_svid import JwtSvid, b64url_decode
from strongroom.mesh.identity.registry import RegistrationEntry, Selector
from strongroom.mesh.identity.spiffe_id import SpiffeId, TrustDomain
from strongroom.mesh.identity.svid import X509Svid, certificates_from_der, spiffe_id_of

DEFAULT_REFRESH_S = 5.0


def _public_numbers(key: Any) -> Any:
    return key.public_numbers() if isinstance(key, ec.EllipticCurvePublicKey) else None


class _Cached:
    """One value read through ``load`` and kept for ``ttl`` seconds (thread-safe)."""

    def __init__(self, load: Callable[[], Any], ttl: float, clock: Callable[[], float]) -> None:
        self._load = load
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._value: Any = None
        self._read_at: float | None = None

    def get(self, *, fresh: bool = False) -> Any:
        with self._lock:
            now = self._clock()
            if fresh or self._read_at is None or now - self._read_at >= self._ttl:
                self._value, self._read_at = self._load(), now
            return self._value


class RemoteMeshAuthority:
    """:class:`~strongroom.mesh.agent.ports.WorkloadAuthority` and ``EntrySource`` over HTTP."""

    def __init__(
        self,
        client: SignedJsonClient,
        trust_domain: TrustDomain | str,
        *,
        refresh_s: float = DEFAULT_REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._domain = (
            trust_domain
            if isinstance(trust_domain, TrustDomain)
            else TrustDomain.parse(trust_domain)
        )
        self._bundle = _Cached(self._read_bundle, refresh_s, clock)
        self._entries = _Cached(self._read_entries, refresh_s, clock)
        self._revoked = _Cached(self._read_revoked, refresh_s, clock)

    @classmethod
    def connect(
        cls,
        trust_domain: str,
        *,
        endpoint_url: str,
        region: str | None = None,
        ca_bundle: str | None = None,
        profile: str | None = None,
        refresh_s: float = DEFAULT_REFRESH_S,
    ) -> RemoteMeshAuthority:
        """Connect with the standard AWS chain's credentials and check the key may serve.

        Raises the server's refusal (``AccessDeniedError`` for a key without
        ``--mesh-agent``) or the connection's failure right away, not at the first workload.
        """
        client = SignedJsonClient.connect(
            MESH_TARGET_PREFIX,
            endpoint_url=endpoint_url,
            region=region,
            ca_bundle=ca_bundle,
            profile=profile,
        )
        try:
            authority = cls(client, trust_domain, refresh_s=refresh_s)
            authority.trust_bundle_der()
        except BaseException:
            client.close()
            raise
        return authority

    @property
    def trust_domain(self) -> TrustDomain:
        """The trust domain this agent serves."""
        return self._domain

    @property
    def endpoint_url(self) -> str:
        """The server the SVIDs come from."""
        return self._client.endpoint_url

    # -- reads, cached ----------------------------------------------------------------------

    def _read_bundle(self) -> tuple[bytes, dict[str, Any]]:
        reply = self._client.call("GetMeshBundle", {"TrustDomain": self._domain.name})
        anchors = reply_blob(reply, "X509Authorities")
        try:
            jwks = json.loads(str(reply["JwtAuthorities"]))
            certificates_from_der(anchors)
        except (KeyError, ValueError, ValidationError):
            raise KMSInternalError("The key service sent a damaged trust bundle.") from None
        return anchors, jwks

    def _read_entries(self) -> list[RegistrationEntry]:
        reply = self._client.call("ListMeshEntries", {"TrustDomain": self._domain.name})
        items = reply.get("Entries", [])
        if not isinstance(items, list):
            raise KMSInternalError("The key service sent damaged registration entries.")
        return [entry_of_reply(item) for item in items]

    def _read_revoked(self) -> frozenset[str]:
        reply = self._client.call("ListRevokedIds", {"TrustDomain": self._domain.name})
        return frozenset(str(i) for i in reply.get("SpiffeIds", []))

    def trust_bundle_der(self) -> bytes:
        """The X.509 trust anchors (concatenated DER)."""
        anchors: bytes = self._bundle.get()[0]
        return anchors

    def jwt_bundle(self) -> dict[str, Any]:
        """The JWT authorities (a JWK Set)."""
        jwks: dict[str, Any] = self._bundle.get()[1]
        return jwks

    def match(
        self, attested: frozenset[Selector], trust_domain: TrustDomain | None = None
    ) -> list[RegistrationEntry]:
        """The server's entries (of ``trust_domain``) whose selectors ``attested`` covers."""
        entries: list[RegistrationEntry] = self._entries.get()
        return [
            e
            for e in entries
            if e.matches(attested) and (trust_domain is None or e.spiffe_id.member_of(trust_domain))
        ]

    def is_revoked(self, subject: SpiffeId | str, *, fresh: bool = False) -> bool:
        """Whether the server lists the identity as revoked."""
        revoked: frozenset[str] = self._revoked.get(fresh=fresh)
        return str(subject) in revoked

    # -- issuing ----------------------------------------------------------------------------

    def new_svid(self, spiffe_id: SpiffeId | str, ttl_s: float | None = None) -> X509Svid:
        """Make a P-256 key pair here and have the server sign an SVID for its public half."""
        key = ec.generate_private_key(ec.SECP256R1())
        public = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        request: dict[str, Any] = {"SpiffeId": str(spiffe_id), "PublicKey": public}
        if ttl_s is not None:
            request["TtlSeconds"] = int(ttl_s)
        reply = self._client.call("IssueX509Svid", request)
        try:
            chain = tuple(certificates_from_der(reply_blob(reply, "CertificateChain")))
            leaf_id = spiffe_id_of(chain[0])
        except (ValueError, IndexError, ValidationError):
            raise KMSInternalError("The key service sent a damaged certificate chain.") from None
        if str(leaf_id) != str(spiffe_id) or _public_numbers(
            chain[0].public_key()
        ) != _public_numbers(key.public_key()):
            raise KMSInternalError("The key service signed another identity or key.")
        return X509Svid(leaf_id, chain, key)

    def new_jwt_svid(
        self, spiffe_id: SpiffeId | str, audience: Iterable[str], ttl_s: float | None = None
    ) -> JwtSvid:
        """Have the server sign a JWT-SVID for ``spiffe_id`` and ``audience``."""
        request: dict[str, Any] = {"SpiffeId": str(spiffe_id), "Audience": list(audience)}
        if ttl_s is not None:
            request["TtlSeconds"] = int(ttl_s)
        reply = self._client.call("IssueJwtSvid", request)
        token = str(reply.get("Token", ""))
        return _jwt_of(token, _claims_of_token(token))

    def validate_jwt_svid(self, token: str, audience: str) -> JwtSvid:
        """Have the server check a JWT-SVID (its refusal is raised as the server words it)."""
        reply = self._client.call(
            "ValidateJwtSvid",
            {"TrustDomain": self._domain.name, "Token": token, "Audience": audience},
        )
        try:
            claims = json.loads(str(reply["Claims"]))
        except (KeyError, ValueError):
            raise KMSInternalError("The key service sent damaged claims.") from None
        return _jwt_of(token, claims)

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def __repr__(self) -> str:
        return (
            f"RemoteMeshAuthority(trust_domain={self._domain.name!r}, "
            f"endpoint_url={self._client.endpoint_url!r})"
        )


def _claims_of_token(token: str) -> dict[str, Any]:
    """The claims of a token the server just signed (read, not verified: it came over TLS)."""
    try:
        claims = json.loads(b64url_decode(token.split(".")[1]))
    except (IndexError, ValueError, ValidationError):
        raise KMSInternalError("The key service sent a damaged token.") from None
    if not isinstance(claims, dict):
        raise KMSInternalError("The key service sent a damaged token.")
    return claims


def _jwt_of(token: str, claims: dict[str, Any]) -> JwtSvid:
    try:
        audience = claims["aud"]
        return JwtSvid(
            token,
            SpiffeId.parse(str(claims["sub"])),
            tuple(audience) if isinstance(audience, list) else (str(audience),),
            float(claims["exp"]),
            float(claims.get("iat", 0)),
        )
    except (KeyError, TypeError, ValueError, ValidationError):
        raise KMSInternalError("The key service sent a damaged token.") from None
