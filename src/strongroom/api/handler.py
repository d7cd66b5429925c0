"""One API request, start to end: authenticate, dispatch, encode, and count it.

:class:`ApiHandler` is synchronous and never touches a socket or an ASGI object: the app
hands it an :class:`~strongroom.api.request.ApiRequest` (from the ASGI path, a pool thread,
or the server's inline path) and gets an :class:`Outcome` back. Errors are
``{"__type", "message"}`` with the HTTP status of the error class (XML for STS); anything
unexpected is a 500 ``KMSInternalException`` with a generic message, the traceback going to
the log under the request id. One JSON access log line per request goes to the
``strongroom.api.access`` logger.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, replace

from strongroom.api import sts
from strongroom.api.backend import KmsBackend
from strongroom.api.extensions import Extension, extension_index
from strongroom.api.hot_json import HotJson, HotRoute
from strongroom.api.json_body import decode_body, encode_body, error_body
from strongroom.api.metrics import ApiMetrics
from strongroom.api.request import ApiRequest
from strongroom.api.shapes import SERIALIZATION, ShapeCodec
from strongroom.api.sigv4 import INVALID, SigV4Verifier, Verified
from strongroom.errors import AuthError, InternalError, ProtocolError, StrongroomError
from strongroom.kms.caller import Caller

JSON_CONTENT_TYPES = frozenset({"application/x-amz-json-1.1", "application/x-amz-json-1.0"})
JSON_CONTENT_TYPE = b"application/x-amz-json-1.1"
KMS_SERVICE = "kms"
STS_SERVICE = "sts"
STS_AUTH_STATUS = 403  # STS answers failed authentication with 403, KMS with 400
UNKNOWN_OPERATION = "UnknownOperationException"
CALLER_MEMO_SIZE = 4096
INTERNAL_MESSAGE = "An internal error occurred. Retry the request."
_STS_CONTENT_TYPE = sts.XML_CONTENT_TYPE.encode("ascii")
_FORM = sts.FORM_CONTENT_TYPE
_INFO = logging.INFO

_log = logging.getLogger("strongroom.api")
_access_log = logging.getLogger("strongroom.api.access")


@dataclass(slots=True)
class Outcome:
    """The response being built, and what the access log and metrics say about it."""

    status: int = 200
    body: bytes = b""
    content_type: bytes = JSON_CONTENT_TYPE
    operation: str = "unknown"
    error: str | None = None
    access_key_id: str = ""


class ApiHandler:
    """Serves :class:`ApiRequest` objects for one backend (thread-safe: no request state)."""

    def __init__(
        self,
        backend: KmsBackend,
        codec: ShapeCodec,
        verifier: SigV4Verifier,
        metrics: ApiMetrics,
        extensions: tuple[Extension, ...],
    ) -> None:
        self.backend = backend
        self.codec = codec
        self.verifier = verifier
        self.metrics = metrics
        self.prefix = codec.target_prefix + "."
        self.extensions = extensions
        # Strongroom's own operations: their own target prefixes, names disjoint from AWS's
        self._extension_of = extension_index(codec.operations, extensions)
        # Encrypt, Decrypt, GenerateDataKey straight to the backend's typed entries
        hot = getattr(backend, "hot_path", None)
        self._hot: dict[str, HotRoute] = {} if hot is None else HotJson(hot).routes
        # by the id of the Verified object (one per key, region and service: see sigv4),
        # kept with it so a reused id is told apart; hashing a Caller costs more
        self._callers: dict[int, tuple[Verified, Caller]] = {}
        # the operation each target names (a bounded set: the models' operations)
        self._labels: dict[str, str] = {}
        for name in codec.operations:
            self._labels[self.prefix + name] = name
        for extension in extensions:
            for name in extension.codec.operations:
                self._labels[extension.prefix + name] = name

    def handle(self, request: ApiRequest) -> Outcome:
        """Authenticate, dispatch and encode one API request."""
        form = request.content_type == _FORM
        # positional: a keyword argument costs a dict per call
        if form:
            outcome = Outcome(200, b"", JSON_CONTENT_TYPE, "GetCallerIdentity")
        else:  # operation_label, inlined
            label = self._labels.get(request.target, "unknown")
            outcome = Outcome(200, b"", JSON_CONTENT_TYPE, label)
        try:
            if form:
                self._sts(request, outcome)
            else:
                self._kms(request, outcome)
        except StrongroomError as err:
            self._fail(request, outcome, err)
        except Exception:
            _log.exception("unexpected error serving request %s", request.request_id)
            self._fail(request, outcome, InternalError(INTERNAL_MESSAGE))
        # self._finish, inlined: every request comes here
        elapsed = time.perf_counter() - request.started
        self.metrics.observe_soon(outcome.operation, outcome.status, outcome.error, elapsed)
        if _access_log.isEnabledFor(_INFO):
            self._log_access(request, outcome, elapsed)
        return outcome

    def too_large(self, request: ApiRequest, limit: int) -> Outcome:
        """The answer to a request whose body is over ``limit`` (413)."""
        outcome = Outcome(operation=self.operation_label(request))
        error = ProtocolError(
            "RequestEntityTooLargeException",
            f"The request body is larger than {limit} bytes.",
            http_status=413,
        )
        self._fail(request, outcome, error)
        self._finish(request, outcome)
        return outcome

    def operation_label(self, request: ApiRequest) -> str:
        """The operation the request names, as metrics label it (``"unknown"`` if none)."""
        if request.content_type == _FORM:
            return "GetCallerIdentity"
        return self._labels.get(request.target, "unknown")

    def _authenticate(self, request: ApiRequest, service: str, outcome: Outcome) -> Verified:
        verified = self.verifier.verify(request, request.by_name)
        outcome.access_key_id = verified.access_key.access_key_id
        if verified.service != service:
            raise AuthError(
                INVALID, f"Credential should be scoped to correct service: '{service}'."
            )
        return verified

    def _kms(self, request: ApiRequest, outcome: Outcome) -> None:
        # self._authenticate, inlined: every KMS request comes here
        verified = self.verifier.verify(request, request.by_name)
        outcome.access_key_id = verified.access_key.access_key_id
        if verified.service != KMS_SERVICE:
            raise AuthError(
                INVALID, f"Credential should be scoped to correct service: '{KMS_SERVICE}'."
            )
        operation = outcome.operation
        if operation == "unknown" or request.content_type not in JSON_CONTENT_TYPES:
            raise ProtocolError(
                UNKNOWN_OPERATION,
                "Send POST / with Content-Type application/x-amz-json-1.1 and "
                f"X-Amz-Target {self.prefix}<Operation> naming a KMS operation.",
            )
        try:
            body = request.body
            # an empty body is {}; strip() copies, so only a body that may be blank pays it
            parsed = decode_body(body) if body and (body[0] > 32 or body.strip()) else {}
        except (ValueError, RecursionError):
            raise ProtocolError(SERIALIZATION, "The request body is not valid JSON.") from None
        found = self._callers.get(id(verified))  # self._caller's memo, inlined
        caller = found[1] if found is not None and found[0] is verified else self._caller(verified)
        hot = self._hot.get(operation)
        if hot is not None and type(parsed) is dict:
            # the plain requests of the hot operations in one direct path; anything else,
            # and anything the backend declines, below
            answer = hot(caller, parsed, request.request_id)
            if answer is not None:
                outcome.body = answer
                return
        extension = self._extension_of.get(operation)
        if extension is not None:
            codec = extension.codec
            decoded = codec.decode_request(operation, parsed)
            response = extension.call(caller, operation, decoded, request.request_id)
        else:
            codec = self.codec
            decoded = codec.decode_request(operation, parsed)
            response = self.backend.call(caller, operation, decoded, request.request_id)
        outcome.body = encode_body(codec.encode_response(operation, response))

    def _caller(self, verified: Verified) -> Caller:
        """The key's principal in the signed region (memoised: ``replace`` is slow)."""
        found = self._callers.get(id(verified))
        if found is not None and found[0] is verified:
            return found[1]
        if len(self._callers) >= CALLER_MEMO_SIZE:
            self._callers.clear()
        caller = replace(
            verified.access_key.caller,
            region=verified.region,
            access_key_id=verified.access_key_id,
        )
        self._callers[id(verified)] = (verified, caller)
        return caller

    def _sts(self, request: ApiRequest, outcome: Outcome) -> None:
        outcome.content_type = _STS_CONTENT_TYPE
        verified = self._authenticate(request, STS_SERVICE, outcome)
        try:
            form = request.body.decode("utf-8") or request.query
        except UnicodeDecodeError:
            raise ProtocolError("MalformedQueryString", "The request is not valid UTF-8.") from None
        sts.parse_action(form)
        caller = replace(verified.access_key.caller, access_key_id=verified.access_key_id)
        outcome.body = sts.caller_identity_xml(caller, request.request_id)

    def _fail(self, request: ApiRequest, outcome: Outcome, err: StrongroomError) -> None:
        aws_type, status = err.aws_type, err.http_status
        if isinstance(err, AuthError) and request.content_type == sts.FORM_CONTENT_TYPE:
            status = STS_AUTH_STATUS
        message = str(err)
        if isinstance(err, InternalError) and status >= 500:
            record = getattr(err, "record", "")  # a tampered store record: which one
            _log.error(
                "internal error serving request %s: %s: %s%s",
                request.request_id,
                aws_type,
                message,
                f" (record {record})" if record else "",
            )
            message = INTERNAL_MESSAGE
        outcome.status, outcome.error = status, aws_type
        if request.content_type == sts.FORM_CONTENT_TYPE:
            outcome.content_type = _STS_CONTENT_TYPE
            outcome.body = sts.error_xml(aws_type, message, request.request_id, status)
        else:
            outcome.content_type = JSON_CONTENT_TYPE
            outcome.body = error_body(aws_type, message)

    def _finish(self, request: ApiRequest, outcome: Outcome) -> None:
        elapsed = time.perf_counter() - request.started
        self.metrics.observe_soon(outcome.operation, outcome.status, outcome.error, elapsed)
        if _access_log.isEnabledFor(_INFO):
            self._log_access(request, outcome, elapsed)

    def _log_access(self, request: ApiRequest, outcome: Outcome, elapsed: float) -> None:
        _access_log.info(
            json.dumps(
                {
                    "request_id": request.request_id,
                    "operation": outcome.operation,
                    "status": outcome.status,
                    "error": outcome.error,
                    "latency_ms": round(elapsed * 1000, 3),
                    "access_key_id": outcome.access_key_id,
                    "client": request.client,
                },
                separators=(",", ":"),
            )
        )
