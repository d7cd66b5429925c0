"""Errors of AWS JSON services as Strongroom errors: one mapping for every client.

A refusal of the other side comes back as the Strongroom error of the same AWS error type
(:func:`error_for_aws_type`, the way back of the ``aws_type`` and ``http_status`` of each
class of :mod:`strongroom.errors`); not reaching it, missing credentials or region are
the Strongroom errors a user can act on. Nothing here imports botocore until a botocore
exception is mapped, so the fast start paths use :func:`error_for_aws_type` too.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager

from strongroom import errors
from strongroom.errors import (
    AuthError,
    DependencyTimeoutError,
    KMSInternalError,
    ProtocolError,
    StrongroomError,
    ValidationError,
)

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


def strongroom_error(exc: Exception, service: str = "the key service") -> StrongroomError:
    """The Strongroom error for a botocore exception (a Strongroom error is returned as is).

    ``service`` names the other side in messages about reaching it.
    """
    from botocore import exceptions as boto

    if isinstance(exc, StrongroomError):
        return exc
    if isinstance(exc, boto.ClientError):
        error = exc.response.get("Error", {})
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400))
        code = str(error.get("Code") or "UnknownError")
        return error_for_aws_type(code, str(error.get("Message") or ""), status)
    if isinstance(exc, boto.NoCredentialsError | boto.PartialCredentialsError):
        return AuthError(
            "MissingAuthenticationTokenException",
            "No AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "a profile, or another source of the AWS credential chain.",
        )
    if isinstance(exc, boto.NoRegionError):
        return ValidationError("No AWS region is set: give --region or set AWS_DEFAULT_REGION.")
    if isinstance(exc, boto.ParamValidationError):
        return ValidationError(str(exc))
    if isinstance(exc, boto.ConnectionError | boto.HTTPClientError):
        return DependencyTimeoutError(f"Cannot reach {service}: {exc}")
    return KMSInternalError(f"{service}: {exc}")


@contextmanager
def aws_errors(service: str = "the key service") -> Iterator[None]:
    """Re-raise botocore exceptions inside the block as Strongroom errors."""
    from botocore import exceptions as boto

    try:
        yield
    except (boto.ClientError, boto.BotoCoreError) as exc:
        raise strongroom_error(exc, service) from exc
