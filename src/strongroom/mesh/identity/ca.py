"""The mesh CA of one trust domain: issues X.509-SVIDs and JWT-SVIDs, revokes identities.

Build it with :meth:`MeshCA.create` (``MeshCA.create("example.org", store, root, clock)``):
that loads the trust domain's root, intermediate and JWT signing key from the key store,
creating them on first use (their private keys are stored only wrapped by the root of
trust, see :mod:`strongroom.mesh.identity.authority`). Then:

- :meth:`MeshCA.new_svid` / :meth:`MeshCA.issue_svid`: an X.509-SVID per the SPIFFE
  X.509-SVID standard (one ``spiffe://`` URI SAN, ``cA`` false, ``digitalSignature``,
  ``serverAuth`` + ``clientAuth``), default TTL :data:`DEFAULT_SVID_TTL_S` (1 hour), renew
  at half life (:attr:`X509Svid.renew_at`);
- :meth:`MeshCA.revoke` / :meth:`MeshCA.is_revoked`: revoking an identity stops issuance
  to it, and verifiers (the sidecar proxies) refuse its certificates from then on;
- :meth:`MeshCA.trust_bundle_pem` and :meth:`MeshCA.spiffe_bundle`: the trust bundle as PEM
  and as a SPIFFE bundle (JWK Set);
- :meth:`MeshCA.new_jwt_svid` / :meth:`MeshCA.validate_jwt_svid`: ES256 JWT-SVIDs.

The CA keeps the unwrapped intermediate and JWT keys in memory and rereads the store
records before each issuance (a cheap read) to pick up a renewal made by another process.
Revocations are reread at most every ``revocation_cache_s`` seconds (by the injected clock).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from strongroom.errors import AccessDeniedError, ValidationError
from strongroom.mesh.identity.authority import Authority, load_or_create_authority, stored_versions
from strongroom.mesh.identity.bundle import jwt_bundle, spiffe_bundle
from strongroom.mesh.identity.jwt_svid import JwtSvid, sign_jwt_svid, verify_jwt_svid
from strongroom.mesh.identity.spiffe_id import SpiffeId, TrustDomain
from strongroom.mesh.identity.svid import IPAddress, X509Svid, sign_svid, spiffe_id_of
from strongroom.ports import GLOBAL_TENANT, Clock, RootOfTrust, Store, StoreTx

DEFAULT_SVID_TTL_S = 3600.0
DEFAULT_JWT_TTL_S = 300.0
MIN_TTL_S = 1.0
REVOKED_KIND = "meshrevoked"
DEFAULT_REVOCATION_CACHE_S = 1.0


def _as_id(spiffe_id: SpiffeId | str) -> SpiffeId:
    return spiffe_id if isinstance(spiffe_id, SpiffeId) else SpiffeId.parse(spiffe_id)


class MeshCA:
    """The certificate authority of one trust domain (thread-safe)."""

    def __init__(
        self,
        trust_domain: TrustDomain,
        store: Store,
        root_of_trust: RootOfTrust,
        clock: Clock,
        *,
        revocation_cache_s: float = DEFAULT_REVOCATION_CACHE_S,
    ) -> None:
        self._trust_domain = trust_domain
        self._store = store
        self._root = root_of_trust
        self._clock = clock
        self._revocation_cache_s = revocation_cache_s
        self._lock = threading.Lock()
        self._authority: Authority | None = None
        self._versions: tuple[bytes | None, ...] = ()
        self._revoked: frozenset[str] = frozenset()
        self._revoked_read_at: float | None = None

    def __repr__(self) -> str:
        return f"MeshCA(trust_domain={self._trust_domain.name!r})"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a mesh CA holds private keys and cannot be pickled")

    @classmethod
    def create(
        cls,
        trust_domain: TrustDomain | str,
        store: Store,
        root_of_trust: RootOfTrust,
        clock: Clock,
        **options: float,
    ) -> MeshCA:
        """The CA of ``trust_domain`` over this store, creating its keys on first use."""
        domain = (
            trust_domain
            if isinstance(trust_domain, TrustDomain)
            else TrustDomain.parse(trust_domain)
        )
        ca = cls(domain, store, root_of_trust, clock, **options)
        ca.authority()
        return ca

    # -- the keys -------------------------------------------------------------------------

    @property
    def trust_domain(self) -> TrustDomain:
        """The trust domain this CA issues for."""
        return self._trust_domain

    @property
    def clock(self) -> Clock:
        """The clock validity periods are counted on (verifiers check at its time too)."""
        return self._clock

    def authority(self) -> Authority:
        """The current certificates and keys, reloaded (or renewed) if the store changed."""
        domain = self._trust_domain
        versions = self._store.read(lambda tx: stored_versions(tx, domain))
        with self._lock:
            current = self._authority
            if current is not None and versions == self._versions and self._inter_fresh(current):
                return current
        now = self._clock.now()
        root = self._root

        def load(tx: StoreTx) -> tuple[Authority, tuple[bytes | None, ...]]:
            return load_or_create_authority(tx, root, domain, now), stored_versions(tx, domain)

        authority, versions = self._store.write(load)
        with self._lock:
            self._authority, self._versions = authority, versions
        return authority

    def _inter_fresh(self, authority: Authority) -> bool:
        cert = authority.intermediate_certificate
        start = cert.not_valid_before_utc.timestamp()
        end = cert.not_valid_after_utc.timestamp()
        return self._clock.now() < end - (end - start) / 3

    # -- X.509-SVIDs ------------------------------------------------------------------------

    def new_svid(
        self,
        spiffe_id: SpiffeId | str,
        ttl_s: float | None = None,
        dns_names: Iterable[str | IPAddress] = (),
    ) -> X509Svid:
        """Issue an SVID for a fresh P-256 key pair; the result holds the private key."""
        key = ec.generate_private_key(ec.SECP256R1())
        svid = self.issue_svid(spiffe_id, key.public_key(), ttl_s, dns_names)
        return X509Svid(svid.spiffe_id, svid.cert_chain, key)

    def issue_svid(
        self,
        spiffe_id: SpiffeId | str,
        public_key: ec.EllipticCurvePublicKey,
        ttl_s: float | None = None,
        dns_names: Iterable[str | IPAddress] = (),
    ) -> X509Svid:
        """Issue an X.509-SVID for ``public_key`` (kept by its holder).

        Raises ``ValidationError`` for an ID of another trust domain or a bad TTL and
        ``AccessDeniedError`` for a revoked identity. ``dns_names`` adds DNS (or IP) SANs (for a
        server that plain HTTPS clients also reach by name); the URI SAN stays the only one.
        """
        sid = self._own_id(spiffe_id)
        ttl = DEFAULT_SVID_TTL_S if ttl_s is None else float(ttl_s)
        if ttl < MIN_TTL_S:
            raise ValidationError(f"an SVID lives at least {MIN_TTL_S:g} second")
        if self.is_revoked(sid, fresh=True):
            raise AccessDeniedError(f"{sid} is revoked: no certificate is issued for it")
        return sign_svid(self.authority(), sid, public_key, self._clock.now(), ttl, dns_names)

    def _own_id(self, spiffe_id: SpiffeId | str) -> SpiffeId:
        sid = _as_id(spiffe_id)
        if not sid.member_of(self._trust_domain):
            raise ValidationError(f"{sid} is not in trust domain {self._trust_domain.name}")
        if not sid.path:
            raise ValidationError("a workload's SPIFFE ID has a path")
        return sid

    # -- revocation -----------------------------------------------------------------------

    def revoke(self, spiffe_id: SpiffeId | str) -> bool:
        """Revoke an identity for good; return ``False`` if it was revoked already."""
        sid = self._own_id(spiffe_id)
        record = json.dumps({"revoked_at": self._clock.now()}).encode("utf-8")
        added = self._store.write(
            lambda tx: tx.insert(GLOBAL_TENANT, REVOKED_KIND, str(sid), record)
        )
        self._revoked_read_at = None
        return added

    def revoked(self) -> frozenset[str]:
        """Every revoked SPIFFE ID of this trust domain (as strings), read now."""
        prefix = str(self._trust_domain.id) + "/"
        rows = self._store.read(lambda tx: tx.scan(GLOBAL_TENANT, REVOKED_KIND, prefix))
        found = frozenset(name for name, _ in rows)
        with self._lock:
            self._revoked, self._revoked_read_at = found, self._clock.now()
        return found

    def is_revoked(
        self, subject: SpiffeId | str | x509.Certificate, *, fresh: bool = False
    ) -> bool:
        """Whether this identity (or the identity of this certificate) is revoked.

        Verifiers call it for every peer certificate. The revocation list is reread at most
        every ``revocation_cache_s`` seconds unless ``fresh``; an unparsable certificate
        counts as revoked.
        """
        if isinstance(subject, x509.Certificate):
            try:
                subject = spiffe_id_of(subject)
            except ValidationError:
                return True
        key = str(_as_id(subject))
        read_at = self._revoked_read_at
        if fresh or read_at is None or self._clock.now() - read_at >= self._revocation_cache_s:
            return key in self.revoked()
        return key in self._revoked

    # -- trust bundle ---------------------------------------------------------------------

    def x509_authorities(self) -> list[x509.Certificate]:
        """The trust anchors of this trust domain (the root certificate)."""
        return [self.authority().root_certificate]

    def trust_bundle_pem(self) -> bytes:
        """The trust bundle as PEM: what a verifier loads as its CA file."""
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.x509_authorities())

    def trust_bundle_der(self) -> bytes:
        """The trust bundle as concatenated DER (the Workload API's bundle fields)."""
        return b"".join(c.public_bytes(serialization.Encoding.DER) for c in self.x509_authorities())

    def spiffe_bundle(self, refresh_hint_s: int = 300) -> dict[str, Any]:
        """The SPIFFE bundle (a JWK Set with ``x509-svid`` and ``jwt-svid`` keys)."""
        return spiffe_bundle(self.authority(), refresh_hint_s)

    def jwt_bundle(self) -> dict[str, Any]:
        """The JWT bundle: a JWK Set of the ``jwt-svid`` keys only."""
        return jwt_bundle(self.authority())

    # -- JWT-SVIDs ------------------------------------------------------------------------

    def new_jwt_svid(
        self, spiffe_id: SpiffeId | str, audience: Iterable[str], ttl_s: float | None = None
    ) -> JwtSvid:
        """Sign a JWT-SVID (ES256) for ``spiffe_id`` and ``audience``."""
        sid = self._own_id(spiffe_id)
        if self.is_revoked(sid, fresh=True):
            raise AccessDeniedError(f"{sid} is revoked: no token is issued for it")
        ttl = DEFAULT_JWT_TTL_S if ttl_s is None else float(ttl_s)
        if ttl < MIN_TTL_S:
            raise ValidationError(f"a JWT-SVID lives at least {MIN_TTL_S:g} second")
        return sign_jwt_svid(self.authority().jwt_key, sid, audience, self._clock.now(), ttl)

    def validate_jwt_svid(self, token: str, audience: str) -> JwtSvid:
        """Check a JWT-SVID's signature, expiry, audience and subject; return its claims.

        Raises ``ValidationError`` for a bad token and ``AccessDeniedError`` for a revoked
        subject.
        """
        svid = verify_jwt_svid(token, audience, self.authority().jwt_key, self._clock.now())
        if not svid.spiffe_id.member_of(self._trust_domain):
            raise ValidationError("the token's subject is not in this trust domain")
        if self.is_revoked(svid.spiffe_id):
            raise AccessDeniedError(f"{svid.spiffe_id} is revoked")
        return svid
