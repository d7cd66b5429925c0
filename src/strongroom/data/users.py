"""Per-user encryption: data keys sealed under one end user's key (crypto-shredding).

:class:`UserDataKeys` is a :class:`~strongroom.data.keys.DataKeyProvider` for one user of
a tenant: each data key comes from
:meth:`~strongroom.kms.KeyService.generate_user_data_key`, so it is sealed under that
user's key (created on first use) below a KMS key. Streams and objects encrypted with it
read as any others while the user key exists; once
:meth:`~strongroom.kms.KeyService.destroy_user_key` deleted it, every one of them fails
with :class:`~strongroom.errors.InvalidCiphertextError`, and the other users' data stays
readable::

    keys = UserDataKeys(service, caller, "user-8c1f")
    objects = ObjectStore(backend, keys, tenant=caller.tenant, key_id="alias/users")
    objects.put("user-8c1f/profile.json", data)
    service.destroy_user_key(caller, "alias/users", "user-8c1f")   # forget the user

In process; over HTTP (a Strongroom server's ``StrongroomUserKeys`` operations) use
:class:`~strongroom.data.user_keys_http.HttpUserDataKeys` instead. Do not put a
:class:`~strongroom.data.cache.CachingDataKeys` in front of it if a destroyed user's data
must become unreadable at once (the cache keeps keys for its ``max_age_s``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from strongroom.crypto.blob import BlobKind, InvalidBlob, parse_header
from strongroom.data.keys import DataKey
from strongroom.errors import InvalidCiphertextError, KMSInternalError

if TYPE_CHECKING:
    from strongroom.kms import Caller, KeyService

_OTHER_USER = "The data key is not sealed under this user's key."
_DESTROYED = "The user's key was destroyed: data encrypted for this user cannot be read."


def open_user_data_key(
    wrapped_key: bytes,
    user_id: str,
    decrypt: Callable[[], bytes],
    exists: Callable[[str], bool],
) -> bytes:
    """``decrypt()`` a data key sealed for ``user_id``; say so if the user key was destroyed.

    A wrapped key of another user (or under no user key) is refused before ``decrypt`` is
    called; if ``decrypt`` fails with InvalidCiphertext and ``exists(key id)`` says the
    user has no key under the blob's KMS key any more, the error says it was destroyed.
    """
    try:
        header, _ = parse_header(bytes(wrapped_key))
    except InvalidBlob:
        raise InvalidCiphertextError(_OTHER_USER) from None
    if header.kind is not BlobKind.USER_KEY or header.user_id != user_id:
        raise InvalidCiphertextError(_OTHER_USER)
    try:
        return decrypt()
    except InvalidCiphertextError:
        if not exists(header.key_id):
            raise InvalidCiphertextError(_DESTROYED) from None
        raise


class UserDataKeys:
    """:class:`~strongroom.data.keys.DataKeyProvider` of one user (``user_id``) of a tenant.

    :meth:`decrypt_data_key` opens only data keys sealed for this very user; a data key
    of another user (or under no user key) is refused before the key service is asked.
    """

    def __init__(self, service: KeyService, caller: Caller, user_id: str) -> None:
        from strongroom.kms.userkey_rows import check_user_id  # keep strongroom.data light

        self._service = service
        self._caller = caller
        self._user_id = check_user_id(user_id)

    @property
    def user_id(self) -> str:
        """The user whose key seals the data keys."""
        return self._user_id

    def generate_data_key(self, key_id: str, context: Mapping[str, str] | None) -> DataKey:
        """A fresh 256-bit data key sealed under the user's key below KMS key ``key_id``."""
        plaintext, wrapped = self._service.generate_user_data_key(
            self._caller, key_id, self._user_id, dict(context) if context else None
        )
        try:
            key = parse_header(wrapped)[0].key_id
        except InvalidBlob:
            raise KMSInternalError("The key service returned an invalid blob.") from None
        if len(plaintext) != 32:
            raise KMSInternalError("The key service returned a data key of the wrong size.")
        caller = self._caller
        return DataKey(plaintext, wrapped, f"arn:aws:kms:{caller.region}:{caller.tenant}:key/{key}")

    def decrypt_data_key(
        self, wrapped_key: bytes, context: Mapping[str, str] | None, key_id: str | None = None
    ) -> bytes:
        """``Decrypt`` a data key of this user; a destroyed user key says so.

        Every failure is :class:`~strongroom.errors.InvalidCiphertextError` (or the key
        service's error for a key the caller cannot use).
        """
        request: dict[str, Any] = {"CiphertextBlob": bytes(wrapped_key)}
        if context:
            request["EncryptionContext"] = dict(context)
        if key_id is not None:
            request["KeyId"] = key_id
        return open_user_data_key(
            wrapped_key,
            self._user_id,
            lambda: bytes(self._service.call(self._caller, "Decrypt", request)["Plaintext"]),
            lambda found: self._service.user_key_exists(self._caller, found, self._user_id),
        )

    def __repr__(self) -> str:
        return f"UserDataKeys(tenant={self._caller.tenant!r}, user_id={self._user_id!r})"
