"""The key service as the plugin needs it, and its in-process implementation.

The plugin asks a key service three things: encrypt a small plaintext under a KMS key,
decrypt a ciphertext (made under any version of that key), and tell the key's ARN and
current version. :class:`KeyBackend` is that protocol; :class:`InProcessBackend` serves it
from a :class:`~strongroom.kms.KeyService` in this process, and
:class:`strongroom.k8s.backend_http.AwsKmsBackend` from the AWS KMS API over HTTPS (a
Strongroom server or AWS KMS itself). Every failure is a
:class:`~strongroom.errors.StrongroomError` carrying its AWS error type.

The key's version is ``1 +`` the number of its rotations (``ListKeyRotations``), which a
Strongroom key and an AWS KMS key both report, so it changes whenever the key is rotated.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from strongroom.errors import UnsupportedOperationError

if TYPE_CHECKING:
    from strongroom.kms import Caller, KeyService

ROTATIONS_PAGE = 1000
"""``Limit`` of each ``ListKeyRotations`` page (AWS's maximum)."""
PLUGIN_USER = "k8s-kms-plugin"
"""User name of the principal the in-process plugin acts as (seen in the audit log)."""


@dataclass(frozen=True, slots=True)
class Sealed:
    """A ciphertext and the ARN of the KMS key it was made under."""

    ciphertext: bytes
    key_arn: str


@dataclass(frozen=True, slots=True)
class KeyVersion:
    """A KMS key's ARN and its current version (1 + number of rotations)."""

    key_arn: str
    version: int


class KeyBackend(Protocol):
    """Encrypt and decrypt under KMS keys; tell a key's ARN and current version.

    Guarantees: ``decrypt(encrypt(k, p, c).ciphertext, c, arn)`` returns ``p`` for every
    version the key ``arn`` ever had, and raises a
    :class:`~strongroom.errors.StrongroomError` for another context, another key, an
    altered ciphertext, or a key that is disabled or not the caller's.
    """

    def encrypt(self, key_id: str, plaintext: bytes, context: Mapping[str, str]) -> Sealed:
        """``Encrypt`` ``plaintext`` under ``key_id`` (id, ARN or alias) bound to ``context``."""
        ...

    def decrypt(self, ciphertext: bytes, context: Mapping[str, str], key_id: str) -> bytes:
        """``Decrypt`` ``ciphertext``, only if it was made under ``key_id`` with ``context``."""
        ...

    def key_version(self, key_id: str) -> KeyVersion:
        """The ARN of ``key_id`` and its current version."""
        ...

    def close(self) -> None:
        """Release what the backend holds (connections, the service)."""
        ...


def count_rotations(list_page: Callable[[dict[str, Any]], dict[str, Any]], key_arn: str) -> int:
    """Count a key's rotations through ``ListKeyRotations`` pages (0 if it cannot rotate).

    ``list_page(request)`` runs one ``ListKeyRotations`` call and returns its response.
    """
    total = 0
    request: dict[str, Any] = {"KeyId": key_arn, "Limit": ROTATIONS_PAGE}
    while True:
        try:
            response = list_page(request)
        except UnsupportedOperationError:
            return 0  # imported or asymmetric material: it never rotates
        total += len(response.get("Rotations") or [])
        marker = response.get("NextMarker")
        if not response.get("Truncated") or not marker:
            return total
        request = {**request, "Marker": marker}


def plugin_caller(service: KeyService, tenant: str, region: str = "us-east-1") -> Caller:
    """The principal ``arn:aws:iam::<account>:user/k8s-kms-plugin`` of ``tenant``.

    ``tenant`` is an account id or tenant name (``NotFoundError`` if there is none). Key
    policies naming the account's root (the default policy) allow it.
    """
    from strongroom.kms import Caller

    account = service.find_tenant(tenant).account_id
    return Caller(account, f"arn:aws:iam::{account}:user/{PLUGIN_USER}", region=region)


class InProcessBackend:
    """:class:`KeyBackend` over a key service in this process, acting as ``caller``.

    Each call is one operation through :meth:`~strongroom.kms.KeyService.call`, so key
    policies, grants and the audit log apply exactly as over HTTP. Calls run to the end
    (the store's own timeouts bound them); the plugin's retries still apply.
    """

    def __init__(self, service: KeyService, caller: Caller, *, owns_service: bool = False) -> None:
        self._service = service
        self._caller = caller
        self._owns_service = owns_service

    def encrypt(self, key_id: str, plaintext: bytes, context: Mapping[str, str]) -> Sealed:
        """Run ``Encrypt``."""
        response = self._service.call(
            self._caller,
            "Encrypt",
            {"KeyId": key_id, "Plaintext": plaintext, "EncryptionContext": dict(context)},
        )
        return Sealed(bytes(response["CiphertextBlob"]), str(response["KeyId"]))

    def decrypt(self, ciphertext: bytes, context: Mapping[str, str], key_id: str) -> bytes:
        """Run ``Decrypt`` naming ``key_id``."""
        response = self._service.call(
            self._caller,
            "Decrypt",
            {"CiphertextBlob": ciphertext, "EncryptionContext": dict(context), "KeyId": key_id},
        )
        return bytes(response["Plaintext"])

    def key_version(self, key_id: str) -> KeyVersion:
        """Run ``DescribeKey``, then ``ListKeyRotations`` until the last page."""
        meta = self._service.call(self._caller, "DescribeKey", {"KeyId": key_id})["KeyMetadata"]
        arn = str(meta["Arn"])

        def page(request: dict[str, Any]) -> dict[str, Any]:
            return self._service.call(self._caller, "ListKeyRotations", request)

        return KeyVersion(arn, 1 + count_rotations(page, arn))

    def close(self) -> None:
        """Close the service if this backend owns it (flushing its audit buffer)."""
        if self._owns_service:
            self._service.close()

    def __repr__(self) -> str:
        return f"InProcessBackend(tenant={self._caller.tenant!r})"
