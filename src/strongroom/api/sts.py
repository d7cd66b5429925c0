"""The one STS call tools make first: ``GetCallerIdentity`` over the AWS Query protocol.

The AWS CLI, Terraform and most SDK-based tools check their credentials with
``sts:GetCallerIdentity`` (form-encoded ``Action=GetCallerIdentity&Version=2011-06-15``)
before doing anything else. We answer it for the signing access key; every other action
is ``InvalidAction``. Responses and errors are XML, as STS writes them.
"""

from __future__ import annotations

from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from strongroom.api import sigv4
from strongroom.errors import ProtocolError
from strongroom.kms.caller import Caller

STS_VERSION = "2011-06-15"
STS_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
XML_CONTENT_TYPE = "text/xml"
MAX_FORM_FIELDS = 64

# STS names the SigV4 failures differently from the JSON services.
_AUTH_CODES = {
    sigv4.MISSING_TOKEN: "MissingAuthenticationToken",
    sigv4.INCOMPLETE: "IncompleteSignature",
    sigv4.UNRECOGNIZED: "InvalidClientTokenId",
    sigv4.INVALID: "SignatureDoesNotMatch",
}


def parse_action(form: str) -> str:
    """Return the ``Action`` of a Query request body or query string."""
    try:
        fields = dict(
            parse_qsl(
                form, keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_FORM_FIELDS
            )
        )
    except ValueError:
        raise ProtocolError("MalformedQueryString", "The request is not a valid query.") from None
    action = fields.get("Action", "")
    if action != "GetCallerIdentity":
        raise ProtocolError("InvalidAction", f"Could not find operation for version {STS_VERSION}.")
    version = fields.get("Version")
    if version is not None and version != STS_VERSION:
        raise ProtocolError("InvalidAction", f"Only version {STS_VERSION} is supported.")
    return action


def caller_identity_xml(caller: Caller, request_id: str) -> bytes:
    """Render the ``GetCallerIdentity`` response for ``caller``."""
    return (
        f'<GetCallerIdentityResponse xmlns="{STS_NAMESPACE}">'
        "<GetCallerIdentityResult>"
        f"<Arn>{escape(caller.principal_arn)}</Arn>"
        f"<UserId>{escape(caller.access_key_id)}</UserId>"
        f"<Account>{escape(caller.tenant)}</Account>"
        "</GetCallerIdentityResult>"
        f"<ResponseMetadata><RequestId>{escape(request_id)}</RequestId></ResponseMetadata>"
        "</GetCallerIdentityResponse>"
    ).encode()


def error_code(aws_type: str) -> str:
    """Return the STS error code for an error type of ours."""
    return _AUTH_CODES.get(aws_type, aws_type)


def error_xml(aws_type: str, message: str, request_id: str, http_status: int) -> bytes:
    """Render an STS ``ErrorResponse``."""
    fault = "Sender" if http_status < 500 else "Receiver"
    return (
        f'<ErrorResponse xmlns="{STS_NAMESPACE}">'
        f"<Error><Type>{fault}</Type><Code>{escape(error_code(aws_type))}</Code>"
        f"<Message>{escape(message)}</Message></Error>"
        f"<RequestId>{escape(request_id)}</RequestId>"
        "</ErrorResponse>"
    ).encode()
