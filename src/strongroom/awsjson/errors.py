"""Errors of AWS JSON services as Strongroom errors: one mapping for every client.

A refusal of the other side comes back as the Strongroom error of the same AWS error type
(:func:`strongroom.awsjson.error_types.error_for_aws_type`); not reaching it, missing
credentials or region are the Strongroom errors a user can act on. Nothing here imports
botocore until a botocore exception is mapped.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from strongroom.awsjson.error_types import error_for_aws_type
from strongroom.errors import (
    AuthError,
    DependencyTimeoutError,
    KMSInternalError,
    StrongroomError,
    ValidationError,
)


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
