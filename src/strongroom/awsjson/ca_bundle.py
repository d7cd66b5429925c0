"""A CA bundle that does not exist is named at once, not at the first request."""

from __future__ import annotations

import os
from typing import Any

from strongroom.awsjson.errors import aws_errors
from strongroom.errors import ValidationError


def check_ca_bundle(session: Any, given: str | None) -> None:
    """Fail naming the file when the CA bundle to verify with does not exist.

    ``given`` is the caller's (``--ca-bundle``); otherwise the AWS chain's
    (``AWS_CA_BUNDLE`` or ``ca_bundle`` of the profile). botocore would only fail at the
    first request, with ``[Errno 2] No such file or directory`` and no path.
    """
    path: str | None
    if given:
        path, origin = given, "--ca-bundle"
    else:
        core = getattr(session, "_session", session)  # a boto3 session, or botocore's own
        with aws_errors():
            found = getattr(core, "get_config_variable", None)
            path = found("ca_bundle") if found is not None else None
        if not path:
            return
        origin = (
            "AWS_CA_BUNDLE"
            if os.environ.get("AWS_CA_BUNDLE") == path
            else "ca_bundle in the AWS config"
        )
    if not os.path.isfile(path):
        raise ValidationError(
            f"The CA bundle {path} (from {origin}) does not exist. Point it at the CA "
            "certificate that verifies the server (a Strongroom server's is DATA_DIR/ca.pem; "
            "'eval \"$(strongroom env)\"' sets AWS_CA_BUNDLE to it)."
        )
