"""Strongroom's per-user keys over HTTP: the ``StrongroomUserKeys`` operations of a server.

A Strongroom server answers, beside the AWS KMS operations and on the same endpoint,
``X-Amz-Target: StrongroomUserKeys.<Operation>`` (AWS JSON 1.1, SigV4 service ``kms``):
create, use and destroy one key per end user below a KMS key (crypto-shredding; see
docs/operations.md). boto3 has no methods for them, so :class:`HttpUserKeys` signs each
request with botocore's ``SigV4Auth`` and sends it with botocore's HTTP session; endpoint,
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

import base64
import binascii
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from strongroom.data.keys import DataKey
from strongroom.data.kms_http import KmsHttpDataKeys, aws_errors
from strongroom.data.users import open_user_data_key
from strongroom.errors import AuthError, KMSInternalError, ValidationError, error_for_aws_type

TARGET_PREFIX = "StrongroomUserKeys."
JSON_11 = "application/x-amz-json-1.1"
SIGNING_NAME = "kms"
MAX_USER_IDS = 10_000
"""User ids per ``CreateUserKeys`` request (the service's limit)."""
MAX_BATCH_BYTES = 1 << 20
"""JSON bytes of user ids per ``CreateUserKeys`` request (the server takes up to 2 MiB)."""


def _blob(response: Mapping[str, Any], name: str) -> bytes:
    try:
        return base64.b64decode(str(response[name]), validate=True)
    except (KeyError, binascii.Error, ValueError):
        raise KMSInternalError(f"The key service's reply has no valid {name}.") from None


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
        timeout: tuple[float, float] = (10.0, 60.0),
    ) -> None:
        from botocore.httpsession import URLLib3Session
        from botocore.utils import get_environ_proxies

        self._kms = kms
        self._credentials = credentials
        self._url = kms.endpoint_url.rstrip("/") + "/"
        self._http = URLLib3Session(
            verify=verify, timeout=timeout, proxies=get_environ_proxies(self._url)
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
        timeout: tuple[float, float] = (10.0, 60.0),
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
            credentials = session.get_credentials()
            # boto3 keeps AWS_CA_BUNDLE and the profile's ca_bundle in its botocore session
            core = getattr(session, "_session", None)
            configured = core.get_config_variable("ca_bundle") if core is not None else None
        if credentials is None:
            kms.close()
            raise AuthError(
                "MissingAuthenticationTokenException",
                "No AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                "a profile, or another source of the AWS credential chain.",
            )
        verify: str | bool = ca_bundle or configured or True
        return cls(kms, credentials, verify=verify, timeout=timeout)

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
        plaintext = _blob(response, "Plaintext")
        if len(plaintext) != number_of_bytes:
            raise KMSInternalError("The key service returned a data key of the wrong size.")
        return DataKey(plaintext, _blob(response, "CiphertextBlob"), str(response["KeyId"]))

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
        return _blob(self.call("EncryptForUser", request), "CiphertextBlob")

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
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        payload = {
            name: base64.b64encode(value).decode("ascii") if isinstance(value, bytes) else value
            for name, value in request.items()
        }
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        headers = {"Content-Type": JSON_11, "X-Amz-Target": TARGET_PREFIX + operation}
        with aws_errors():
            http_request = AWSRequest(method="POST", url=self._url, data=body, headers=headers)
            frozen = self._credentials.get_frozen_credentials()
            SigV4Auth(frozen, SIGNING_NAME, self._kms.region).add_auth(http_request)
            reply = self._http.send(http_request.prepare())
        status, content = int(reply.status_code), bytes(reply.content or b"")
        try:
            parsed = json.loads(content) if content.strip() else {}
        except ValueError:
            parsed = None
        if status == 200 and isinstance(parsed, dict):
            return parsed
        if isinstance(parsed, dict) and parsed.get("__type"):
            aws_type = str(parsed["__type"]).rpartition("#")[2]
            message = str(parsed.get("message") or parsed.get("Message") or "")
            raise error_for_aws_type(aws_type, message, status)
        if status == 200:
            raise KMSInternalError("The key service's reply is not a JSON object.")
        raise error_for_aws_type("UnknownError", f"HTTP {status} from {self._url}", status)

    def close(self) -> None:
        """Close the HTTP connection pool and the KMS client."""
        self._http.close()
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
