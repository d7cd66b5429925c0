"""The way back from an AWS error type to the Strongroom error of that type.

A refusal of the other side comes back as the Strongroom error of the same AWS error type:
the inverse of the ``aws_type`` and ``http_status`` of each class of
:mod:`strongroom.errors`. Kept apart from the botocore mapping
(:mod:`strongroom.awsjson.errors`) so the fast start paths import nothing more than this.
"""

from __future__ import annotations

import functools

from strongroom import errors
from strongroom.errors import AuthError, KMSInternalError, ProtocolError, StrongroomError

AUTH_ERROR_TYPES = frozenset(
    {
        "MissingAuthenticationTokenException",
        "IncompleteSignatureException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        # STS names the same failures differently
        "MissingAuthenticationToken",
        "IncompleteSignature",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
    }
)
"""AWS error types of failed authentication: :class:`AuthError` (see :func:`error_for_aws_type`)."""


@functools.cache
def error_classes() -> dict[str, type[StrongroomError]]:
    """``aws_type -> class`` over the leaf classes of :mod:`strongroom.errors`.

    Where several classes share a type (``KMSInternalException``) the first defined wins;
    :class:`AuthError` and :class:`ProtocolError` carry their type per instance and are
    built by :func:`error_for_aws_type` instead.
    """
    classes = [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, StrongroomError)
    ]
    table: dict[str, type[StrongroomError]] = {}
    for cls in classes:
        is_leaf = not any(other is not cls and issubclass(other, cls) for other in classes)
        if is_leaf and cls not in (AuthError, ProtocolError):
            table.setdefault(cls.aws_type, cls)
    return table


def error_for_aws_type(
    aws_type: str, message: str, http_status: int | None = None
) -> StrongroomError:
    """The Strongroom error for an AWS error response: its type, message and HTTP status.

    A type of :data:`AUTH_ERROR_TYPES` is an :class:`AuthError`, a type of
    :func:`error_classes` an instance of that class. An unknown type is a
    :class:`KMSInternalError` naming it when the status is 5xx, else a
    :class:`ProtocolError` that keeps the type (``UnknownError`` if empty) and the status
    (400 if none).
    """
    if aws_type in AUTH_ERROR_TYPES:
        return AuthError(aws_type, message)
    cls = error_classes().get(aws_type)
    if cls is not None:
        return cls(message)
    status = http_status or 400
    if status >= 500:
        return KMSInternalError(": ".join(part for part in (aws_type, message) if part))
    return ProtocolError(aws_type or "UnknownError", message, status)
