"""Strongroom's per-user keys over HTTP: the ``StrongroomUserKeys`` operations of a server.

A Strongroom server answers, beside the AWS KMS operations and on the same endpoint,
``X-Amz-Target: StrongroomUserKeys.<Operation>`` (AWS JSON 1.1, SigV4 service ``kms``):
create, use and destroy one key per end user below a KMS key (crypto-shredding; see
docs/operations.md). boto3 has no methods for them, so :class:`HttpUserKeys` sends them
with :class:`~strongroom.data.signed_json.SignedJsonClient` (botocore's SigV4); endpoint,
region, credentials and CA bundle come from the same standard AWS chain as
:class:`~strongroom.data.kms_http.KmsHttpDataKeys` (whose client it keeps for
``Decrypt``)::

    users = HttpUserKeys.connect(endpoint_url="https://kms.internal:8443", ca_bundle="ca.pem")
    blob = users.encrypt_for_user("alias/users", "user-8c1f", b"secret")
    users.decrypt(blob)                                  # ordinary Decrypt
    users.destroy_user_key("alias/users", "user-8c1f")   # forget the user: blob is dead
    keys = users.for_user("user-42")                     # a DataKeyProvider for ObjectStore

Errors come back as the Strongroom error of the AWS error type, as from
:class:`~strongroom.data.kms_http.KmsHttpDataKeys`. Requests are not retried (a retried
``DestroyUserKey`` would report ``False`` for a key it did destroy).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from strongroom.awsjson.client import (
    DEFAULT_TIMEOUT,
    SignedJsonClient,
    reply_blob,
    session_credentials,
)
from strongroom.data.keys import DataKey
from strongroom.data.kms_http import KmsHttpDataKeys, aws_errors
from strongroom.data.users import open_user_data_key
from strongroom.errors import KMSInternalError, ValidationError

TARGET_PREFIX = "StrongroomUserKeys"
MAX_USER_IDS = 10_000
"""User ids per ``CreateUserKeys`` request (the service's limit)."""
MAX_BATCH_BYTES = 1 << 20
"""JSON bytes of user ids per ``CreateUserKeys`` request (the server takes up to 2 MiB)."""


def id_batches(user_ids: Iterable[str]) -> Iterator[list[str]]:
    """``user_ids`` in lists of at most :data:`MAX_USER_IDS` ids and ~:data:`MAX_BATCH_BYTES`."""
    batch: list[str] = []
    size = 0
    for user_id in user_ids:
        cost = len(json.dumps(user_id)) + 2
        if batch and (len(batch) >= MAX_USER_IDS or size + cost > MAX_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(user_id)
        size += cost
    if batch:
        yield batch


class HttpUserKeys:
    """The user-key operations of a Strongroom server, signed with an AWS access key.

    ``kms`` supplies the endpoint, region and ``Decrypt``; ``credentials`` are botocore
    credentials (refreshed as botocore refreshes them); ``verify`` is a CA bundle path
    or ``True`` for the system trust store. Thread-safe.
    """

    def __init__(
        self,
        kms: KmsHttpDataKeys,
        credentials: Any,
        *,
        verify: str | bool = True,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    ) -> None:
        self._kms = kms
        self._wire = SignedJsonClient(
            kms.endpoint_url, kms.region, credentials, TARGET_PREFIX, verify=verify, timeout=timeout
        )

    @classmethod
    def connect(
        cls,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        ca_bundle: str | None = None,
        profile: str | None = None,
        session: Any | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        **config: Any,
    ) -> HttpUserKeys:
        """Build from the standard AWS chain, as :meth:`KmsHttpDataKeys.connect` does.

        ``session`` is a boto3 session (default: a new one for ``profile``); ``config``
        goes to botocore's ``Config`` of the KMS client used for ``Decrypt``.
        """
        import boto3

        with aws_errors():
            if session is None:
                session = boto3.session.Session(profile_name=profile)
            kms = KmsHttpDataKeys.connect(
                endpoint_url=endpoint_url,
                region=region,
                ca_bundle=ca_bundle,
                session=session,
                **config,
            )
        try:
            credentials, configured = session_credentials(session)
        except BaseException:
            kms.close()
            raise
        return cls(kms, credentials, verify=ca_bundle or configured, timeout=timeout)

    @property
    def kms(self) -> KmsHttpDataKeys:
        """The KMS client: ``Decrypt``, the account id, the endpoint."""
        return self._kms

    # -- the operations --------------------------------------------------------------------

    def generate_user_data_key(
        self,
        key_id: str,
        user_id: str,
        context: Mapping[str, str] | None = None,
        number_of_bytes: int = 32,
    ) -> DataKey:
        """``GenerateUserDataKey``: a fresh data key, sealed under the user's key."""
        request: dict[str, Any] = {"KeyId": key_id, "UserId": user_id}
        if context:
            request["EncryptionContext"] = dict(context)
        if number_of_bytes != 32:
            request["NumberOfBytes"] = number_of_bytes
        response = self.call("GenerateUserDataKey", request)
        plaintext = reply_blob(response, "Plaintext")
        if len(plaintext) != number_of_bytes:
            raise KMSInternalError("The key service returned a data key of the wrong size.")
        return DataKey(plaintext, reply_blob(response, "CiphertextBlob"), str(response["KeyId"]))

    def encrypt_for_user(
        self,
        key_id: str,
        user_id: str,
        plaintext: bytes,
        context: Mapping[str, str] | None = None,
    ) -> bytes:
        """``EncryptForUser``: up to 4096 bytes under the user's key; ``Decrypt`` opens it."""
        request: dict[str, Any] = {"KeyId": key_id, "UserId": user_id, "Plaintext": plaintext}
        if context:
            request["EncryptionContext"] = dict(context)
        return reply_blob(self.call("EncryptForUser", request), "CiphertextBlob")

    def create_user_keys(self, key_id: str, user_ids: Iterable[str]) -> int:
        """``CreateUserKeys`` in batches; return how many keys were new.

        Each batch is one request (one or more transactions on the server): a failure
        part-way keeps the batches done, and calling again completes the rest.
        """
        created = 0
        for batch in id_batches(user_ids):
            response = self.call("CreateUserKeys", {"KeyId": key_id, "UserIds": batch})
            created += int(response["Created"])
        return created

    def destroy_user_key(self, key_id: str, user_id: str) -> bool:
        """``DestroyUserKey``: shred the user's key; return whether it existed."""
        return bool(self.call("DestroyUserKey", {"KeyId": key_id, "UserId": user_id})["Destroyed"])

    def user_key_exists(self, key_id: str, user_id: str) -> bool:
        """``DescribeUserKey``: whether the user has a key under ``key_id``."""
        return bool(self.call("DescribeUserKey", {"KeyId": key_id, "UserId": user_id})["Exists"])

    def count_user_keys(self, key_id: str) -> int:
        """``CountUserKeys``: how many user keys exist under ``key_id``."""
        return int(self.call("CountUserKeys", {"KeyId": key_id})["Count"])

    def decrypt(
        self, blob: bytes, context: Mapping[str, str] | None = None, key_id: str | None = None
    ) -> bytes:
        """The ordinary ``Decrypt`` (a destroyed user's blob: InvalidCiphertextError)."""
        return self._kms.decrypt_data_key(blob, context, key_id)

    def for_user(self, user_id: str) -> HttpUserDataKeys:
        """A :class:`~strongroom.data.keys.DataKeyProvider` of one user over this client."""
        return HttpUserDataKeys(self, user_id)

    # -- the wire ------------------------------------------------------------------------

    def call(self, operation: str, request: Mapping[str, Any]) -> dict[str, Any]:
        """Send ``StrongroomUserKeys.<operation>``; return the JSON reply (blobs in base64).

        ``bytes`` members of ``request`` are sent base64-encoded. A refusal raises the
        Strongroom error of its AWS type.
        """
        return self._wire.call(operation, request)

    def close(self) -> None:
        """Close the HTTP connection pool and the KMS client."""
        self._wire.close()
        self._kms.close()

    def __repr__(self) -> str:
        return f"HttpUserKeys(endpoint_url={self._kms.endpoint_url!r})"


class HttpUserDataKeys:
    """:class:`~strongroom.data.keys.DataKeyProvider` of one user, over :class:`HttpUserKeys`.

    As :class:`~strongroom.data.users.UserDataKeys`, but against a server: data keys come
    from ``GenerateUserDataKey``; :meth:`decrypt_data_key` opens only this user's data keys
    (by ``Decrypt``) and says when the user's key was destroyed.
    """

    def __init__(self, client: HttpUserKeys, user_id: str) -> None:
        if not isinstance(user_id, str) or not user_id:
            raise ValidationError("A user id is 1 to 256 bytes of UTF-8.")
        self._client = client
        self._user_id = user_id

    @property
    def user_id(self) -> str:
        """The user whose key seals the data keys."""
        return self._user_id

    def generate_data_key(self, key_id: str, context: Mapping[str, str] | None) -> DataKey:
        """A fresh 256-bit data key sealed under the user's key below KMS key ``key_id``."""
        return self._client.generate_user_data_key(key_id, self._user_id, context)

    def decrypt_data_key(
        self, wrapped_key: bytes, context: Mapping[str, str] | None, key_id: str | None = None
    ) -> bytes:
        """``Decrypt`` a data key of this user; a destroyed user key says so."""
        return open_user_data_key(
            wrapped_key,
            self._user_id,
            lambda: self._client.decrypt(wrapped_key, context, key_id),
            lambda found_key: self._client.user_key_exists(found_key, self._user_id),
        )

    def __repr__(self) -> str:
        return f"HttpUserDataKeys(user_id={self._user_id!r})"
