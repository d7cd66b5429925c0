"""The KMIP engine: request bytes in, response bytes out, every operation audited.

:class:`KmipEngine` decodes a message, runs each batch item through the handler table
:data:`HANDLERS` as the authenticated client, and encodes the response. It never raises
for bad input: unreadable TTLV, an unknown operation or a failed operation each become a
KMIP failure result. Every batch item, successful or not, is one event in the key
service's audit chain (operation ``kmip:<Name>``, the object, the result); the material
behind it goes through the key service, whose own ``GenerateDataKey``/``Decrypt``
events sit in the same chain.
"""

from __future__ import annotations

import itertools
import logging
import secrets
from collections.abc import Callable

from strongroom.errors import StrongroomError
from strongroom.kmip import ops_attributes, ops_crypto, ops_objects, ops_rekey
from strongroom.kmip.context import Kernel, KmipClient, OpCall
from strongroom.kmip.errors import KmipError
from strongroom.kmip.messages import (
    BatchItem,
    Request,
    Result,
    Version,
    error_message,
    parse_request,
    read_version,
    response_message,
    version_item,
)
from strongroom.kmip.tags import (
    SUPPORTED_VERSIONS,
    ObjectType,
    Operation,
    QueryFunction,
    ResultReason,
    Tag,
)
from strongroom.kmip.ttlv import Item, TtlvError, decode, encode, enumeration, structure, text

log = logging.getLogger("strongroom.kmip")

Handler = Callable[[OpCall, Item], list[Item]]
VENDOR = "Strongroom"


def op_discover_versions(call: OpCall, payload: Item) -> list[Item]:
    """DiscoverVersions: the versions both sides speak, in the client's order of preference."""
    asked = [read_version(v) for v in payload.find_all(Tag.PROTOCOL_VERSION)]
    versions = [v for v in asked if v in SUPPORTED_VERSIONS] if asked else SUPPORTED_VERSIONS
    return [version_item(v) for v in versions]


def op_query(call: OpCall, payload: Item) -> list[Item]:
    """Query: the operations and object types served, and who the server is."""
    functions = {f.value for f in payload.find_all(Tag.QUERY_FUNCTION)}
    answer: list[Item] = []
    if QueryFunction.QUERY_OPERATIONS in functions:
        answer += [enumeration(Tag.OPERATION, op) for op in sorted(HANDLERS)]
    if QueryFunction.QUERY_OBJECTS in functions:
        answer += [
            enumeration(Tag.OBJECT_TYPE, t)
            for t in (ObjectType.SYMMETRIC_KEY, ObjectType.SECRET_DATA)
        ]
    if QueryFunction.QUERY_SERVER_INFORMATION in functions:
        answer.append(text(Tag.VENDOR_IDENTIFICATION, VENDOR))
        answer.append(structure(Tag.SERVER_INFORMATION))
    return answer


HANDLERS: dict[int, Handler] = {
    Operation.CREATE: ops_objects.op_create,
    Operation.REGISTER: ops_objects.op_register,
    Operation.REKEY: ops_rekey.op_rekey,
    Operation.GET: ops_objects.op_get,
    Operation.ACTIVATE: ops_objects.op_activate,
    Operation.REVOKE: ops_objects.op_revoke,
    Operation.DESTROY: ops_objects.op_destroy,
    Operation.LOCATE: ops_attributes.op_locate,
    Operation.GET_ATTRIBUTES: ops_attributes.op_get_attributes,
    Operation.GET_ATTRIBUTE_LIST: ops_attributes.op_get_attribute_list,
    Operation.ADD_ATTRIBUTE: ops_attributes.op_add_attribute,
    Operation.MODIFY_ATTRIBUTE: ops_attributes.op_modify_attribute,
    Operation.SET_ATTRIBUTE: ops_attributes.op_set_attribute,
    Operation.DELETE_ATTRIBUTE: ops_attributes.op_delete_attribute,
    Operation.ENCRYPT: ops_crypto.op_encrypt,
    Operation.DECRYPT: ops_crypto.op_decrypt,
    Operation.MAC: ops_crypto.op_mac,
    Operation.QUERY: op_query,
    Operation.DISCOVER_VERSIONS: op_discover_versions,
}
"""Operation number -> handler: the whole of what the KMIP front-end serves."""


QUICK_OPERATIONS = frozenset(
    {
        Operation.GET,
        Operation.ENCRYPT,
        Operation.DECRYPT,
        Operation.MAC,
        Operation.GET_ATTRIBUTES,
        Operation.GET_ATTRIBUTE_LIST,
        Operation.QUERY,
        Operation.DISCOVER_VERSIONS,
    }
)
"""Operations that only read one record and compute: no commit, no scan of a tenant."""
QUICK_BATCH_ITEMS = 8


def is_quick(request: Request) -> bool:
    """Whether ``request`` is short reads only (so it may run on a listener's event loop)."""
    return len(request.items) <= QUICK_BATCH_ITEMS and all(
        item.operation in QUICK_OPERATIONS for item in request.items
    )


def operation_name(number: int) -> str:
    """``Get`` for 0x0A; ``Operation0x2A`` for anything not named."""
    try:
        return Operation(number).name.title().replace("_", "")
    except ValueError:
        return f"Operation0x{number:02X}"


class KmipEngine:
    """Serve KMIP messages for authenticated clients over one kernel."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self._request_prefix = f"kmip-{secrets.token_hex(6)}"
        self._counter = itertools.count(1)

    def handle(self, data: bytes, client: KmipClient) -> bytes:
        """The response to one request message (always a response, never an exception)."""
        prepared = self.prepare(data, client)
        return prepared if isinstance(prepared, bytes) else self.respond(prepared, client)

    def prepare(self, data: bytes, client: KmipClient) -> Request | bytes:
        """Parse ``data``: the request to :meth:`respond` to, or at once the error response.

        A listener uses :func:`is_quick` on the request to run reads on its event loop and
        the rest (durable writes, scans) on worker threads.
        """
        now = int(self.kernel.clock.now())
        try:
            request = parse_request(decode(data))
        except TtlvError as exc:
            self._audit(client, "kmip:InvalidMessage", None, "InvalidMessage", {})
            return encode(error_message((1, 0), now, ResultReason.INVALID_MESSAGE, str(exc)))
        except KmipError as exc:
            self._audit(client, "kmip:InvalidMessage", None, "InvalidMessage", {})
            return encode(error_message((1, 0), now, exc.reason, exc.message))
        if request.version not in SUPPORTED_VERSIONS:
            version: Version = (1, 0) if request.version[0] < 2 else (2, 0)
            message = f"protocol version {request.version[0]}.{request.version[1]} is not served"
            return encode(error_message(version, now, ResultReason.INVALID_MESSAGE, message))
        return request

    def respond(self, request: Request, client: KmipClient) -> bytes:
        """Run the items of a parsed request and encode the response."""
        now = int(self.kernel.clock.now())
        results = self._run(request, client)
        response = encode(response_message(request.version, now, results))
        if request.max_response_size is not None and len(response) > request.max_response_size:
            return encode(
                error_message(
                    request.version, now, ResultReason.RESPONSE_TOO_LARGE, "response too large"
                )
            )
        return response

    def _run(self, request: Request, client: KmipClient) -> list[Result]:
        results: list[Result] = []
        placeholder: str | None = None
        failed = False
        for item in request.items:
            if failed and not request.continue_on_error:
                break
            call = OpCall(self.kernel, client, request.version, placeholder)
            result = self._one(call, item)
            failed = failed or result.reason is not None
            if call.uid is not None and result.reason is None:
                placeholder = call.uid
            results.append(result)
        return results

    def _one(self, call: OpCall, item: BatchItem) -> Result:
        name = f"kmip:{operation_name(item.operation)}"
        handler = HANDLERS.get(item.operation)
        try:  # fail-closed audit: refused, and not recorded, while the log lags
            self.kernel.audit.admit()
        except StrongroomError as exc:
            return Result(
                item.operation, item.batch_id, None, ResultReason.GENERAL_FAILURE, exc.message
            )
        try:
            if handler is None:
                raise KmipError(ResultReason.OPERATION_NOT_SUPPORTED, f"{name} is not served")
            payload = handler(call, item.payload)
        except KmipError as exc:
            self._audit(call.client, name, call.uid, exc.reason.name, call.detail)
            return Result(item.operation, item.batch_id, None, exc.reason, exc.message)
        except TtlvError as exc:  # a structure where a value was expected, and the like
            self._audit(call.client, name, call.uid, "InvalidMessage", call.detail)
            return Result(
                item.operation, item.batch_id, None, ResultReason.INVALID_MESSAGE, str(exc)
            )
        except StrongroomError as exc:  # the key service refused (disabled key, policy...)
            self._audit(call.client, name, call.uid, exc.aws_type, call.detail)
            reason = (
                ResultReason.GENERAL_FAILURE
                if exc.http_status >= 500
                else ResultReason.PERMISSION_DENIED
            )
            return Result(
                item.operation, item.batch_id, None, reason, f"key service: {exc.message}"
            )
        except Exception:  # never let one request take the connection down
            log.exception("KMIP operation %s failed", name)
            self._audit(call.client, name, call.uid, "InternalError", call.detail)
            return Result(
                item.operation, item.batch_id, None, ResultReason.GENERAL_FAILURE, "internal error"
            )
        self._audit(call.client, name, call.uid, "Success", call.detail)
        return Result(item.operation, item.batch_id, payload)

    def _audit(
        self,
        client: KmipClient,
        operation: str,
        uid: str | None,
        result: str,
        detail: dict[str, object],
    ) -> None:
        caller = client.caller
        self.kernel.audit.record(
            {
                "requestId": f"{self._request_prefix}-{next(self._counter):010x}",
                "operation": operation,
                "account": caller.tenant,
                "principal": caller.principal_arn,
                "accessKeyId": caller.access_key_id,
                "region": caller.region,
                "keyArn": None,
                "kmipObject": uid,
                "result": result,
                **detail,
            }
        )
