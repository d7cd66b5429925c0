"""The one error hierarchy of Strongroom.

Every error a client can see is a subclass of :class:`StrongroomError`. Each class carries
the AWS KMS error type it stands for (``aws_type``) and the HTTP status AWS answers it with
(``http_status``); ``strongroom.api`` reads those two attributes and nothing else, so the
mapping to the wire lives here, in one place. The way back, from an AWS error response (of a
Strongroom server or AWS itself) to the error of that type, is
:func:`strongroom.awsjson.error_types.error_for_aws_type`, built from the same attributes.

Messages are written for the client: they never hold key material, plaintext or anything
of another tenant. Log detail goes to the log, not into the exception text.

::

    StrongroomError
    ├── ClientError                       (4xx: the request was wrong)
    │   ├── ValidationError               ValidationException
    │   ├── NotFoundError                 NotFoundException
    │   ├── AlreadyExistsError            AlreadyExistsException
    │   ├── DisabledError                 DisabledException
    │   ├── InvalidStateError             KMSInvalidStateException
    │   ├── InvalidCiphertextError        InvalidCiphertextException
    │   ├── ObjectRolledBackError         InvalidCiphertextException
    │   ├── IncorrectKeyError             IncorrectKeyException
    │   ├── InvalidKeyUsageError          InvalidKeyUsageException
    │   ├── InvalidSignatureError         KMSInvalidSignatureException
    │   ├── InvalidMacError               KMSInvalidMacException
    │   ├── InvalidArnError               InvalidArnException
    │   ├── InvalidAliasNameError         InvalidAliasNameException
    │   ├── InvalidGrantTokenError        InvalidGrantTokenException
    │   ├── InvalidGrantIdError           InvalidGrantIdException
    │   ├── InvalidMarkerError            InvalidMarkerException
    │   ├── InvalidImportTokenError       InvalidImportTokenException
    │   ├── ExpiredImportTokenError       ExpiredImportTokenException
    │   ├── IncorrectKeyMaterialError     IncorrectKeyMaterialException
    │   ├── MalformedPolicyDocumentError  MalformedPolicyDocumentException
    │   ├── TagError                      TagException
    │   ├── LimitExceededError            LimitExceededException
    │   ├── UnsupportedOperationError     UnsupportedOperationException
    │   ├── DryRunOperationError          DryRunOperationException
    │   ├── AccessDeniedError             AccessDeniedException
    │   ├── AuthError                     (SigV4: the four AWS auth types; 400, STS 403)
    │   └── ProtocolError                 (wire: SerializationException, UnknownOperation...)
    └── InternalError                     (5xx: our fault, never the client's)
        ├── KMSInternalError              KMSInternalException
        ├── DependencyTimeoutError        DependencyTimeoutException
        ├── AuditUnavailableError         DependencyTimeoutException (audit cannot be written)
        ├── StoreError                    KMSInternalException
        │   └── TamperedRecordError       KMSInternalException
        └── RootOfTrustError              KMSInternalException
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs fast CLI starts ~10 ms of CPU
if TYPE_CHECKING:
    from typing import ClassVar


class StrongroomError(Exception):
    """Root of every Strongroom error; ``str(err)`` is the client-facing message."""

    aws_type: ClassVar[str] = "KMSInternalException"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


class ClientError(StrongroomError):
    """The request cannot be served as sent; retrying it unchanged will fail again."""

    aws_type = "ValidationException"
    http_status = 400


class ValidationError(ClientError):
    """A parameter is missing, malformed or out of its allowed range."""

    aws_type = "ValidationException"


class NotFoundError(ClientError):
    """The named key, alias, grant or user key does not exist (for this caller)."""

    aws_type = "NotFoundException"


class AlreadyExistsError(ClientError):
    """The resource to create exists already (an alias name, for example)."""

    aws_type = "AlreadyExistsException"


class DisabledError(ClientError):
    """The key is disabled."""

    aws_type = "DisabledException"


class InvalidStateError(ClientError):
    """The key's state does not allow this operation (pending deletion, pending import...)."""

    aws_type = "KMSInvalidStateException"


class InvalidCiphertextError(ClientError):
    """The ciphertext, its encryption context or its tag is not valid.

    One error for every way a ciphertext can be bad, so a failure tells nothing about why.
    """

    aws_type = "InvalidCiphertextException"


class ObjectRolledBackError(ClientError):
    """A stored object is an older version of itself than its store's index allows.

    The same wire type as :class:`InvalidCiphertextError` (which keeps that type's mapping).
    """

    aws_type = "InvalidCiphertextException"


class IncorrectKeyError(ClientError):
    """The ciphertext was made under another key than the one named in the request."""

    aws_type = "IncorrectKeyException"


class InvalidKeyUsageError(ClientError):
    """The key's usage or spec does not allow this operation or algorithm."""

    aws_type = "InvalidKeyUsageException"


class InvalidSignatureError(ClientError):
    """A signature did not verify."""

    aws_type = "KMSInvalidSignatureException"


class InvalidMacError(ClientError):
    """A MAC did not verify."""

    aws_type = "KMSInvalidMacException"


class InvalidArnError(ClientError):
    """An ARN is malformed."""

    aws_type = "InvalidArnException"


class InvalidAliasNameError(ClientError):
    """An alias name is malformed or reserved."""

    aws_type = "InvalidAliasNameException"


class InvalidGrantTokenError(ClientError):
    """A grant token is malformed or unknown."""

    aws_type = "InvalidGrantTokenException"


class InvalidGrantIdError(ClientError):
    """A grant id is malformed or names no grant of this key."""

    aws_type = "InvalidGrantIdException"


class InvalidMarkerError(ClientError):
    """A pagination marker was not issued by us for this listing."""

    aws_type = "InvalidMarkerException"


class InvalidImportTokenError(ClientError):
    """An import token is malformed or belongs to another key."""

    aws_type = "InvalidImportTokenException"


class ExpiredImportTokenError(ClientError):
    """An import token's validity has ended."""

    aws_type = "ExpiredImportTokenException"


class IncorrectKeyMaterialError(ClientError):
    """Imported key material differs from the material imported into this key before."""

    aws_type = "IncorrectKeyMaterialException"


class MalformedPolicyDocumentError(ClientError):
    """A key policy document is not valid JSON or not of the supported shape."""

    aws_type = "MalformedPolicyDocumentException"


class TagError(ClientError):
    """A tag key or value breaks the tagging rules."""

    aws_type = "TagException"


class LimitExceededError(ClientError):
    """A quota (aliases per key, grants per key, tags...) would be exceeded."""

    aws_type = "LimitExceededException"


class UnsupportedOperationError(ClientError):
    """The operation exists in AWS KMS but Strongroom does not offer it."""

    aws_type = "UnsupportedOperationException"


class DryRunOperationError(ClientError):
    """A DryRun request would have succeeded."""

    aws_type = "DryRunOperationException"
    # HTTP 400 like every client error: AWS KMS answers a dry run with 400, not 412.


class AccessDeniedError(ClientError):
    """The caller is not allowed to perform this action on this resource."""

    aws_type = "AccessDeniedException"


class AuthError(ClientError):
    """The request's authentication (SigV4) failed; ``aws_type`` is set per instance.

    AWS KMS (JSON 1.1) answers these with 400, as every JSON service does; STS (the query
    protocol) with 403, which ``strongroom.api`` applies to its STS answers.
    """

    http_status = 400

    def __init__(self, aws_type: str, message: str) -> None:
        super().__init__(message)
        self.aws_type = aws_type  # type: ignore[misc]


class ProtocolError(ClientError):
    """The request breaks the wire protocol itself (JSON, base64, target, size).

    Raised by ``strongroom.api`` before the key service sees the request; ``aws_type``
    (``SerializationException``, ``UnknownOperationException``...) and ``http_status`` are
    set per instance.
    """

    def __init__(self, aws_type: str, message: str, http_status: int = 400) -> None:
        super().__init__(message)
        self.aws_type = aws_type  # type: ignore[misc]
        self.http_status = http_status  # type: ignore[misc]


class InternalError(StrongroomError):
    """Something on our side failed; the client may retry."""

    aws_type = "KMSInternalException"
    http_status = 500


class KMSInternalError(InternalError):
    """An internal invariant did not hold."""


class DependencyTimeoutError(InternalError):
    """A dependency (store, HSM, key service) did not answer in time."""

    aws_type = "DependencyTimeoutException"
    http_status = 503


class AuditUnavailableError(InternalError):
    """The audit log cannot be written, so the operation is refused (fail-closed audit).

    ``DependencyTimeoutException`` with HTTP 503: AWS SDKs treat it as retryable, and the
    call succeeds again once the audit store takes writes. (A sibling of
    :class:`DependencyTimeoutError`, which stays the class of that type on the way back.)
    """

    aws_type = "DependencyTimeoutException"
    http_status = 503


class StoreError(InternalError):
    """The key store failed (I/O, a lost connection, a broken invariant)."""


class TamperedRecordError(StoreError):
    """A key store record failed its integrity check (edited outside Strongroom): refused.

    ``record`` names the row (tenant/kind/name) for the server's log; the message does not.
    """

    record: str = ""


class RootOfTrustError(InternalError):
    """The root of trust (HSM or master key file) could not wrap or unwrap."""
