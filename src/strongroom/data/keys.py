"""Data keys through a key service: one small client protocol, and its in-process client.

Encryption at rest asks the key service for two things only: a fresh data key (returned in
plaintext and wrapped under a KMS key) and the plaintext of a wrapped data key.
:class:`DataKeyProvider` is that protocol; :class:`InProcessDataKeys` serves it from a
:class:`~strongroom.kms.KeyService` in the same process. A client of the AWS KMS API over
HTTP (so the same code runs against a Strongroom server or AWS KMS) implements it too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from strongroom.errors import KMSInternalError

if TYPE_CHECKING:
    from strongroom.kms import Caller, KeyService

DATA_KEY_SPEC = "AES_256"
"""Every data key is a 256-bit AES key."""


@dataclass(frozen=True, slots=True)
class DataKey:
    """A fresh data key: its plaintext, the key service's wrapped form and the KMS key ARN.

    Unpacks like the tuple ``(plaintext, wrapped, key_arn)``. The plaintext never shows in
    ``repr``; the value refuses pickling.
    """

    plaintext: bytes = field(repr=False)
    wrapped: bytes
    key_arn: str

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("data keys cannot be pickled")

    def __iter__(self) -> Iterator[bytes | str]:
        """Unpack as ``plaintext, wrapped, key_arn``."""
        return iter((self.plaintext, self.wrapped, self.key_arn))


@runtime_checkable
class DataKeyProvider(Protocol):
    """Generates and unwraps data keys under KMS keys, bound to an encryption context.

    Guarantees: ``decrypt_data_key(k.wrapped, context)`` returns ``k.plaintext`` for
    ``k = generate_data_key(key_id, context)`` and the same context, and fails (with a
    :class:`~strongroom.errors.StrongroomError`) for any other context, for a wrapped key
    that was altered, and for a caller not allowed to use the KMS key.
    """

    def generate_data_key(self, key_id: str, context: Mapping[str, str] | None) -> DataKey:
        """Return a new 256-bit data key under KMS key ``key_id`` (id, ARN or alias)."""
        ...

    def decrypt_data_key(
        self, wrapped_key: bytes, context: Mapping[str, str] | None, key_id: str | None = None
    ) -> bytes:
        """Return the plaintext of ``wrapped_key``; with ``key_id``, only if it is under it."""
        ...


def _context_member(context: Mapping[str, str] | None) -> dict[str, Any]:
    return {"EncryptionContext": dict(context)} if context else {}


def generate_data_key_request(key_id: str, context: Mapping[str, str] | None) -> dict[str, Any]:
    """The ``GenerateDataKey`` request for a 256-bit data key under ``key_id``."""
    return {"KeyId": key_id, "KeySpec": DATA_KEY_SPEC, **_context_member(context)}


def decrypt_data_key_request(
    wrapped_key: bytes, context: Mapping[str, str] | None, key_id: str | None
) -> dict[str, Any]:
    """The ``Decrypt`` request for a wrapped data key (naming ``key_id`` when given)."""
    request: dict[str, Any] = {"CiphertextBlob": wrapped_key, **_context_member(context)}
    if key_id is not None:
        request["KeyId"] = key_id
    return request


def re_encrypt_data_key_request(
    wrapped_key: bytes,
    context: Mapping[str, str] | None,
    destination_key_id: str,
    source_key_id: str | None,
) -> dict[str, Any]:
    """The ``ReEncrypt`` request moving a wrapped data key to ``destination_key_id``.

    Its context stays the same; ``source_key_id`` is named when given.
    """
    request: dict[str, Any] = {
        "CiphertextBlob": wrapped_key,
        "DestinationKeyId": destination_key_id,
    }
    if context:
        request["SourceEncryptionContext"] = dict(context)
        request["DestinationEncryptionContext"] = dict(context)
    if source_key_id is not None:
        request["SourceKeyId"] = source_key_id
    return request


def data_key_of(response: Mapping[str, Any]) -> DataKey:
    """The :class:`DataKey` of a ``GenerateDataKey`` response; it must hold 32 bytes."""
    plaintext = bytes(response["Plaintext"])
    if len(plaintext) != 32:
        raise KMSInternalError("The key service returned a data key of the wrong size.")
    return DataKey(plaintext, bytes(response["CiphertextBlob"]), str(response["KeyId"]))


class InProcessDataKeys:
    """:class:`DataKeyProvider` over a key service in this process, acting as ``caller``.

    Each call is one ``GenerateDataKey`` or ``Decrypt`` through
    :meth:`~strongroom.kms.KeyService.call`, so policies, grants and audit apply as over
    HTTP.
    """

    def __init__(self, service: KeyService, caller: Caller) -> None:
        self._service = service
        self._caller = caller

    def generate_data_key(self, key_id: str, context: Mapping[str, str] | None) -> DataKey:
        """Call ``GenerateDataKey`` with ``KeySpec=AES_256``."""
        request = generate_data_key_request(key_id, context)
        return data_key_of(self._service.call(self._caller, "GenerateDataKey", request))

    def decrypt_data_key(
        self, wrapped_key: bytes, context: Mapping[str, str] | None, key_id: str | None = None
    ) -> bytes:
        """Call ``Decrypt`` on the wrapped key (naming ``key_id`` when given)."""
        request = decrypt_data_key_request(wrapped_key, context, key_id)
        return bytes(self._service.call(self._caller, "Decrypt", request)["Plaintext"])

    def re_encrypt_data_key(
        self,
        wrapped_key: bytes,
        context: Mapping[str, str] | None,
        destination_key_id: str,
        source_key_id: str | None = None,
    ) -> DataKey:
        """Call ``ReEncrypt`` (same context); the result's ``plaintext`` is empty."""
        request = re_encrypt_data_key_request(
            wrapped_key, context, destination_key_id, source_key_id or None
        )
        reply = self._service.call(self._caller, "ReEncrypt", request)
        return DataKey(b"", bytes(reply["CiphertextBlob"]), str(reply["KeyId"]))

    def __repr__(self) -> str:
        return f"InProcessDataKeys(tenant={self._caller.tenant!r})"
