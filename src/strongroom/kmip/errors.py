"""The error of the KMIP front-end: a KMIP Result Reason and a message for the client."""

from __future__ import annotations

from strongroom.errors import ClientError
from strongroom.kmip.tags import ResultReason


class KmipError(ClientError):
    """A KMIP operation failed; ``reason`` is the Result Reason the response carries.

    Messages are for the client: they never hold key material.
    """

    aws_type = "KMIPException"

    def __init__(self, reason: ResultReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
