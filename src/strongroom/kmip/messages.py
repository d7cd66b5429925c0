"""KMIP request and response messages: typed views over the TTLV tree (pure, no I/O).

A request is a header (protocol version, options, batch count) and one or more batch
items (operation, optional unique batch item id, payload). A response echoes the version,
stamps the time, and has one batch item per request item with a result status, a reason
and message on failure, and the payload on success.
"""

from __future__ import annotations

from dataclasses import dataclass

from strongroom.kmip.errors import KmipError
from strongroom.kmip.tags import ResultReason, ResultStatus, Tag
from strongroom.kmip.ttlv import (
    Item,
    ItemType,
    byte_string,
    date_time,
    enumeration,
    integer,
    structure,
    text,
)

MAX_BATCH_ITEMS = 64
"""Most batch items one request may carry."""

Version = tuple[int, int]

CONTINUE_ON_ERROR = 2
"""Batch Error Continuation Option: Continue (1 is Undo, 3 is Stop, the default)."""


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One operation of a request."""

    operation: int
    batch_id: bytes | None
    payload: Item


@dataclass(frozen=True, slots=True)
class Request:
    """A parsed request message."""

    version: Version
    items: tuple[BatchItem, ...]
    continue_on_error: bool = False
    max_response_size: int | None = None


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome of one batch item."""

    operation: int | None
    batch_id: bytes | None
    payload: list[Item] | None = None
    reason: ResultReason | None = None
    message: str = ""


def _int_child(item: Item, tag: int) -> int | None:
    found = item.find(tag)
    if found is None:
        return None
    if not isinstance(found.value, int) or isinstance(found.value, bool):
        raise KmipError(ResultReason.INVALID_MESSAGE, f"item 0x{tag:06X} is not a number")
    return found.value


def read_version(item: Item | None) -> Version:
    """A ``Protocol Version`` structure as ``(major, minor)``."""
    if item is None or item.type is not ItemType.STRUCTURE:
        raise KmipError(ResultReason.INVALID_MESSAGE, "missing Protocol Version")
    major = _int_child(item, Tag.PROTOCOL_VERSION_MAJOR)
    minor = _int_child(item, Tag.PROTOCOL_VERSION_MINOR)
    if major is None or minor is None:
        raise KmipError(ResultReason.INVALID_MESSAGE, "incomplete Protocol Version")
    return major, minor


def version_item(version: Version) -> Item:
    """A ``Protocol Version`` structure."""
    return structure(
        Tag.PROTOCOL_VERSION,
        integer(Tag.PROTOCOL_VERSION_MAJOR, version[0]),
        integer(Tag.PROTOCOL_VERSION_MINOR, version[1]),
    )


def parse_request(message: Item) -> Request:
    """The typed request of a decoded message; :class:`KmipError` if it is not one."""
    if message.tag != Tag.REQUEST_MESSAGE or message.type is not ItemType.STRUCTURE:
        raise KmipError(ResultReason.INVALID_MESSAGE, "not a Request Message")
    header = message.find(Tag.REQUEST_HEADER)
    if header is None or header.type is not ItemType.STRUCTURE:
        raise KmipError(ResultReason.INVALID_MESSAGE, "missing Request Header")
    version = read_version(header.find(Tag.PROTOCOL_VERSION))
    count = _int_child(header, Tag.BATCH_COUNT)
    items: list[BatchItem] = []
    for raw in message.find_all(Tag.BATCH_ITEM):
        if raw.type is not ItemType.STRUCTURE:
            raise KmipError(ResultReason.INVALID_MESSAGE, "a Batch Item is not a structure")
        operation = _int_child(raw, Tag.OPERATION)
        if operation is None:
            raise KmipError(ResultReason.INVALID_MESSAGE, "a Batch Item without Operation")
        batch_id = raw.find(Tag.UNIQUE_BATCH_ITEM_ID)
        payload = raw.find(Tag.REQUEST_PAYLOAD)
        if payload is None:
            payload = structure(Tag.REQUEST_PAYLOAD)
        elif payload.type is not ItemType.STRUCTURE:
            raise KmipError(ResultReason.INVALID_MESSAGE, "a Request Payload is not a structure")
        items.append(
            BatchItem(
                operation,
                batch_id.value
                if batch_id is not None and isinstance(batch_id.value, bytes)
                else None,
                payload,
            )
        )
    if not items or count != len(items):
        raise KmipError(ResultReason.INVALID_MESSAGE, "Batch Count does not match the items")
    if len(items) > MAX_BATCH_ITEMS:
        raise KmipError(ResultReason.INVALID_MESSAGE, "too many batch items")
    option = _int_child(header, Tag.BATCH_ERROR_CONTINUATION_OPTION)
    return Request(
        version,
        tuple(items),
        continue_on_error=option == CONTINUE_ON_ERROR,
        max_response_size=_int_child(header, Tag.MAXIMUM_RESPONSE_SIZE),
    )


def response_message(version: Version, now: int, results: list[Result]) -> Item:
    """The ``Response Message`` for ``results``."""
    items = []
    for result in results:
        failed = result.reason is not None
        items.append(
            structure(
                Tag.BATCH_ITEM,
                enumeration(Tag.OPERATION, result.operation) if result.operation else None,
                byte_string(Tag.UNIQUE_BATCH_ITEM_ID, result.batch_id)
                if result.batch_id is not None
                else None,
                enumeration(
                    Tag.RESULT_STATUS,
                    ResultStatus.OPERATION_FAILED if failed else ResultStatus.SUCCESS,
                ),
                enumeration(Tag.RESULT_REASON, result.reason) if result.reason else None,
                text(Tag.RESULT_MESSAGE, result.message) if failed else None,
                structure(Tag.RESPONSE_PAYLOAD, *result.payload)
                if result.payload is not None and not failed
                else None,
            )
        )
    header = structure(
        Tag.RESPONSE_HEADER,
        version_item(version),
        date_time(Tag.TIME_STAMP, now),
        integer(Tag.BATCH_COUNT, len(items)),
    )
    return structure(Tag.RESPONSE_MESSAGE, header, *items)


def error_message(version: Version, now: int, reason: ResultReason, message: str) -> Item:
    """A response with one failed batch item and no operation: for unreadable requests."""
    return response_message(version, now, [Result(None, None, None, reason, message)])
