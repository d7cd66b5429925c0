"""KMIP client certificates: issued by the instance CA, mapped to a tenant and a principal.

``strongroom kmip client issue`` has the instance CA issue a client certificate and
stores the mapping ``SHA-256(certificate DER) -> (tenant, principal, KMS key, region)``
at ``("_global", "kmip.client", fingerprint)``, wrapped by the root of trust and bound to
the fingerprint: someone who can write the database still cannot map a certificate to a
tenant. The server looks the fingerprint of each connection's certificate up (with a short
cache, so a revoked client is refused within seconds); a certificate with no mapping, even
one the CA signed, is refused. Revoking deletes the mapping.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from strongroom.crypto.wrap import key_identity
from strongroom.errors import NotFoundError, StoreError, ValidationError
from strongroom.kmip.context import KmipClient
from strongroom.ports import Clock, RootOfTrust, Store, StoreTx
from strongroom.tls.ca import CA_TENANT, load_or_create_ca

KIND = "kmip.client"
RECORD_VERSION = 1
DEFAULT_VALIDITY_DAYS = 365
LOOKUP_TTL_S = 5.0


def fingerprint(cert_der: bytes) -> str:
    """The SHA-256 of a certificate's DER, in hex: how a client is named."""
    return hashlib.sha256(cert_der).hexdigest()


def _identity(print_: str) -> bytes:
    return key_identity(KIND, print_)


@dataclass(frozen=True, slots=True)
class IssuedClient:
    """A new client certificate, its key (PEM) and the CA bundle; the key is never shown."""

    client: KmipClient
    certificate_pem: bytes
    key_pem: bytes
    ca_pem: bytes
    not_after: float

    def __repr__(self) -> str:
        return f"IssuedClient({self.client.principal!r}, fingerprint={self.client.fingerprint})"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("an issued client holds a private key and cannot be pickled")


def _record(client: KmipClient, not_after: float) -> bytes:
    return json.dumps(
        {
            "v": RECORD_VERSION,
            "tenant": client.tenant,
            "principal": client.principal,
            "kmsKey": client.kms_key,
            "region": client.region,
            "notAfter": not_after,
        },
        sort_keys=True,
    ).encode("utf-8")


def _client_of(print_: str, plain: bytes) -> KmipClient:
    try:
        doc = json.loads(plain)
        if doc["v"] != RECORD_VERSION:
            raise StoreError("a KMIP client record has an unknown version")
        return KmipClient(doc["tenant"], doc["principal"], doc["kmsKey"], doc["region"], print_)
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError("a KMIP client record is damaged") from exc


def issue_client(
    store: Store,
    root: RootOfTrust,
    clock: Clock,
    client: KmipClient,
    validity_days: int = DEFAULT_VALIDITY_DAYS,
) -> IssuedClient:
    """Issue a certificate for ``client`` (tenant, principal, KMS key) and record it."""
    if not client.principal or len(client.principal) > 64 or "/" in client.principal:
        raise ValidationError("a KMIP principal name is 1-64 characters without '/'")
    if not 1 <= validity_days <= 3650:
        raise ValidationError("validity is 1 to 3650 days")
    now = clock.now()

    def unit(tx: StoreTx) -> IssuedClient:
        ca = load_or_create_ca(tx, root, now)
        cert, key = ca.issue_client(f"kmip:{client.tenant}:{client.principal}", now, validity_days)
        der = cert.public_bytes(serialization.Encoding.DER)
        print_ = fingerprint(der)
        mapped = KmipClient(client.tenant, client.principal, client.kms_key, client.region, print_)
        not_after = cert.not_valid_after_utc.timestamp()
        wrapped = root.wrap(_record(mapped, not_after), _identity(print_))
        tx.put(CA_TENANT, KIND, print_, wrapped)
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return IssuedClient(
            mapped, cert.public_bytes(serialization.Encoding.PEM), key_pem, ca.pem, not_after
        )

    return store.write(unit)


def list_clients(store: Store, root: RootOfTrust, tenant: str | None = None) -> list[KmipClient]:
    """Every mapped client (of ``tenant`` if given)."""

    def unit(tx: StoreTx) -> list[KmipClient]:
        found = []
        for print_, wrapped in tx.scan(CA_TENANT, KIND):
            client = _client_of(print_, root.unwrap(wrapped, _identity(print_)))
            if tenant is None or client.tenant == tenant:
                found.append(client)
        return found

    return store.read(unit)


def revoke_client(store: Store, print_: str) -> None:
    """Remove a client's mapping: its certificate is refused from then on."""
    if not store.write(lambda tx: tx.delete(CA_TENANT, KIND, print_.lower())):
        raise NotFoundError(f"no KMIP client with fingerprint {print_[:64]}")


class ClientDirectory:
    """Resolve a connection's certificate to its client (cached for a few seconds)."""

    def __init__(self, store: Store, root: RootOfTrust, clock: Clock) -> None:
        self._store = store
        self._root = root
        self._clock = clock
        self._cache: dict[str, tuple[float, KmipClient | None]] = {}
        self._lock = threading.Lock()

    def resolve(self, cert_der: bytes) -> KmipClient | None:
        """The client a certificate stands for, or ``None`` if it is not (or no longer) mapped."""
        print_ = fingerprint(cert_der)
        now = self._clock.now()
        with self._lock:
            hit = self._cache.get(print_)
        if hit is not None and now - hit[0] < LOOKUP_TTL_S:
            return hit[1]
        raw = self._store.read(lambda tx: tx.get(CA_TENANT, KIND, print_))
        client = None
        if raw is not None:
            client = _client_of(print_, self._root.unwrap(raw, _identity(print_)))
            cert = x509.load_der_x509_certificate(cert_der)
            if cert.not_valid_after_utc.timestamp() < now:
                client = None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[print_] = (now, client)
        return client
