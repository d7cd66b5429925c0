"""The KMIP listener's hardening and the operations PyKMIP's client does not send."""

from __future__ import annotations

import json
import socket
import ssl
import struct
import time
from pathlib import Path
from typing import Any

import pytest

from strongroom.kmip.server import Limits
from strongroom.kmip.tags import (
    Operation,
    QueryFunction,
    ResultReason,
    ResultStatus,
    Tag,
)
from strongroom.kmip.ttlv import (
    byte_string,
    enumeration,
    integer,
    structure,
    text,
)
from strongroom.testing.kmip import KmipServerInfo, kmip_server
from strongroom.testing.kmip_client import connect, read_message, request, results, status


def _call(info: KmipServerInfo, data: bytes, tenant: str = "alice") -> list[Any]:
    files = info.clients[tenant]
    with connect(info.port, files, str(files.ca)) as sock:
        sock.sendall(data)
        return results(read_message(sock))


def test_discover_versions(kmip: KmipServerInfo) -> None:
    asked = [
        structure(
            Tag.PROTOCOL_VERSION,
            integer(Tag.PROTOCOL_VERSION_MAJOR, major),
            integer(Tag.PROTOCOL_VERSION_MINOR, minor),
        )
        for major, minor in ((3, 0), (2, 1), (1, 4), (1, 0))
    ]
    (item,) = _call(kmip, request((1, 4), (Operation.DISCOVER_VERSIONS, asked)))
    payload = item.find(Tag.RESPONSE_PAYLOAD)
    versions = [
        (v.find(Tag.PROTOCOL_VERSION_MAJOR).value, v.find(Tag.PROTOCOL_VERSION_MINOR).value)
        for v in payload.find_all(Tag.PROTOCOL_VERSION)
    ]
    assert versions == [(2, 1), (1, 4), (1, 0)]
    (item,) = _call(kmip, request((1, 0), (Operation.DISCOVER_VERSIONS, [])))
    everything = list(item.find(Tag.RESPONSE_PAYLOAD).find_all(Tag.PROTOCOL_VERSION))
    assert len(everything) == 7  # 2.1, 2.0, 1.4, 1.3, 1.2, 1.1, 1.0


def test_query(kmip: KmipServerInfo) -> None:
    asked = [enumeration(Tag.QUERY_FUNCTION, f) for f in QueryFunction]
    (item,) = _call(kmip, request((2, 0), (Operation.QUERY, asked)))
    payload = item.find(Tag.RESPONSE_PAYLOAD)
    operations = {o.value for o in payload.find_all(Tag.OPERATION)}
    assert {Operation.CREATE, Operation.GET, Operation.ENCRYPT, Operation.LOCATE} <= operations
    assert payload.find(Tag.VENDOR_IDENTIFICATION).value == "Strongroom"


def test_register_then_add_attribute_in_one_batch_with_the_id_placeholder(
    kmip: KmipServerInfo,
) -> None:
    secret = structure(
        Tag.SECRET_DATA,
        enumeration(Tag.SECRET_DATA_TYPE, 1),
        structure(
            Tag.KEY_BLOCK,
            enumeration(Tag.KEY_FORMAT_TYPE, 2),
            structure(Tag.KEY_VALUE, byte_string(Tag.KEY_MATERIAL, b"p4ssw0rd")),
        ),
    )
    group = structure(
        Tag.ATTRIBUTE, text(Tag.ATTRIBUTE_NAME, "Object Group"), text(Tag.ATTRIBUTE_VALUE, "db")
    )
    custom = structure(
        Tag.ATTRIBUTE, text(Tag.ATTRIBUTE_NAME, "x-owner"), text(Tag.ATTRIBUTE_VALUE, "ops")
    )
    batch = request(
        (1, 4),
        (
            Operation.REGISTER,
            [enumeration(Tag.OBJECT_TYPE, 7), structure(Tag.TEMPLATE_ATTRIBUTE), secret],
        ),
        (Operation.ADD_ATTRIBUTE, [group]),
        (Operation.ADD_ATTRIBUTE, [custom]),
        (Operation.ACTIVATE, []),
        (
            Operation.GET_ATTRIBUTES,
            [
                text(Tag.ATTRIBUTE_NAME, "Object Group"),
                text(Tag.ATTRIBUTE_NAME, "x-owner"),
                text(Tag.ATTRIBUTE_NAME, "State"),
            ],
        ),
    )
    items = _call(kmip, batch)
    assert [status(i)[0] for i in items] == [ResultStatus.SUCCESS] * 5
    attrs = list(items[-1].find(Tag.RESPONSE_PAYLOAD).find_all(Tag.ATTRIBUTE))
    values = {a.find(Tag.ATTRIBUTE_NAME).value: a.find(Tag.ATTRIBUTE_VALUE).value for a in attrs}
    assert values == {"Object Group": "db", "x-owner": "ops", "State": 2}


def test_rekey_in_kmip_2_0_batch_with_the_id_placeholder(kmip: KmipServerInfo) -> None:
    attributes = structure(
        Tag.ATTRIBUTES,
        enumeration(Tag.CRYPTOGRAPHIC_ALGORITHM, 3),
        integer(Tag.CRYPTOGRAPHIC_LENGTH, 256),
        integer(Tag.CRYPTOGRAPHIC_USAGE_MASK, 12),
    )
    reference = structure(Tag.ATTRIBUTE_REFERENCE, text(Tag.ATTRIBUTE_NAME, "Link"))
    batch = request(
        (2, 0),
        (Operation.CREATE, [enumeration(Tag.OBJECT_TYPE, 2), attributes]),
        (Operation.ACTIVATE, []),
        (Operation.REKEY, [integer(Tag.OFFSET, 0)]),  # the placeholder: the key just made
        (Operation.GET_ATTRIBUTES, [enumeration(Tag.ATTRIBUTE_REFERENCE, Tag.LINK)]),
        (Operation.ENCRYPT, [byte_string(Tag.DATA, b"after the rekey")]),
    )
    items = _call(kmip, batch)
    assert [status(i)[0] for i in items] == [ResultStatus.SUCCESS] * 5
    old = items[0].find(Tag.RESPONSE_PAYLOAD).find(Tag.UNIQUE_IDENTIFIER).value
    new = items[2].find(Tag.RESPONSE_PAYLOAD).find(Tag.UNIQUE_IDENTIFIER).value
    assert new != old
    (link,) = items[3].find(Tag.RESPONSE_PAYLOAD).find(Tag.ATTRIBUTES).find_all(Tag.LINK)
    assert link.find(Tag.LINK_TYPE).value == 0x107  # Replaced Object
    assert link.find(Tag.LINKED_OBJECT_IDENTIFIER).value == old
    assert items[4].find(Tag.RESPONSE_PAYLOAD).find(Tag.UNIQUE_IDENTIFIER).value == new
    (back,) = _call(
        kmip,
        request(
            (2, 0),
            (Operation.GET_ATTRIBUTES, [text(Tag.UNIQUE_IDENTIFIER, old), reference]),
        ),
    )
    (link,) = back.find(Tag.RESPONSE_PAYLOAD).find(Tag.ATTRIBUTES).find_all(Tag.LINK)
    assert link.find(Tag.LINK_TYPE).value == 0x106  # Replacement Object
    assert link.find(Tag.LINKED_OBJECT_IDENTIFIER).value == new


def test_rekey_of_another_tenants_key_is_not_found(kmip: KmipServerInfo) -> None:
    template = structure(
        Tag.TEMPLATE_ATTRIBUTE,
        structure(
            Tag.ATTRIBUTE,
            text(Tag.ATTRIBUTE_NAME, "Cryptographic Algorithm"),
            enumeration(Tag.ATTRIBUTE_VALUE, 3),
        ),
        structure(
            Tag.ATTRIBUTE,
            text(Tag.ATTRIBUTE_NAME, "Cryptographic Length"),
            integer(Tag.ATTRIBUTE_VALUE, 128),
        ),
    )
    (made,) = _call(
        kmip, request((1, 4), (Operation.CREATE, [enumeration(Tag.OBJECT_TYPE, 2), template]))
    )
    uid = made.find(Tag.RESPONSE_PAYLOAD).find(Tag.UNIQUE_IDENTIFIER).value
    (item,) = _call(
        kmip, request((1, 4), (Operation.REKEY, [text(Tag.UNIQUE_IDENTIFIER, uid)])), "bob"
    )
    assert status(item) == (ResultStatus.OPERATION_FAILED, ResultReason.ITEM_NOT_FOUND)
    (item,) = _call(
        kmip,
        request(
            (1, 4), (Operation.REKEY, [text(Tag.UNIQUE_IDENTIFIER, uid), integer(Tag.OFFSET, -5)])
        ),
    )
    assert status(item) == (ResultStatus.OPERATION_FAILED, ResultReason.INVALID_FIELD)


def test_gcm_with_tag_item_in_kmip_1_4(kmip: KmipServerInfo) -> None:
    template = structure(
        Tag.TEMPLATE_ATTRIBUTE,
        structure(
            Tag.ATTRIBUTE,
            text(Tag.ATTRIBUTE_NAME, "Cryptographic Algorithm"),
            enumeration(Tag.ATTRIBUTE_VALUE, 3),
        ),
        structure(
            Tag.ATTRIBUTE,
            text(Tag.ATTRIBUTE_NAME, "Cryptographic Length"),
            integer(Tag.ATTRIBUTE_VALUE, 256),
        ),
    )
    params = structure(Tag.CRYPTOGRAPHIC_PARAMETERS, enumeration(Tag.BLOCK_CIPHER_MODE, 9))
    create, _activate, encrypt = _call(
        kmip,
        request(
            (1, 4),
            (Operation.CREATE, [enumeration(Tag.OBJECT_TYPE, 2), template]),
            (Operation.ACTIVATE, []),
            (
                Operation.ENCRYPT,
                [
                    params,
                    byte_string(Tag.DATA, b"plain"),
                    byte_string(Tag.AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA, b"row 7"),
                ],
            ),
        ),
    )
    uid = create.find(Tag.RESPONSE_PAYLOAD).find(Tag.UNIQUE_IDENTIFIER).value
    out = encrypt.find(Tag.RESPONSE_PAYLOAD)
    data, iv, tag = (
        out.find(t).value
        for t in (Tag.DATA, Tag.IV_COUNTER_NONCE, Tag.AUTHENTICATED_ENCRYPTION_TAG)
    )
    common = [
        text(Tag.UNIQUE_IDENTIFIER, uid),
        params,
        byte_string(Tag.DATA, data),
        byte_string(Tag.IV_COUNTER_NONCE, iv),
        byte_string(Tag.AUTHENTICATED_ENCRYPTION_TAG, tag),
    ]
    (ok,) = _call(
        kmip,
        request(
            (1, 4),
            (
                Operation.DECRYPT,
                [*common, byte_string(Tag.AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA, b"row 7")],
            ),
        ),
    )
    assert ok.find(Tag.RESPONSE_PAYLOAD).find(Tag.DATA).value == b"plain"
    (bad,) = _call(
        kmip,
        request(
            (1, 4),
            (
                Operation.DECRYPT,
                [*common, byte_string(Tag.AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA, b"row 8")],
            ),
        ),
    )
    assert status(bad) == (ResultStatus.OPERATION_FAILED, ResultReason.CRYPTOGRAPHIC_FAILURE)
    (client_iv,) = _call(
        kmip,
        request(
            (1, 4),
            (
                Operation.ENCRYPT,
                [
                    text(Tag.UNIQUE_IDENTIFIER, uid),
                    byte_string(Tag.DATA, b"x"),
                    byte_string(Tag.IV_COUNTER_NONCE, b"\0" * 12),
                ],
            ),
        ),
    )
    assert status(client_iv)[1] == ResultReason.FEATURE_NOT_SUPPORTED


def test_unknown_operation_and_failed_batch_stop(kmip: KmipServerInfo) -> None:
    items = _call(kmip, request((1, 2), (0x2A, []), (Operation.QUERY, [])))
    assert len(items) == 1  # Stop (the default) ends the batch at the first failure
    assert status(items[0]) == (ResultStatus.OPERATION_FAILED, ResultReason.OPERATION_NOT_SUPPORTED)


@pytest.mark.parametrize(
    "garbage",
    [
        struct.pack(">II", 0x42007801, 16) + b"\xff" * 16,  # a structure of junk
        struct.pack(">II", 0x42007801, 8) + struct.pack(">II", 0x42007701, 0),  # no header items
        struct.pack(">II", 0x42007801, 0),  # empty message
    ],
)
def test_bad_ttlv_gets_a_kmip_error_and_the_connection_lives(
    kmip: KmipServerInfo, garbage: bytes
) -> None:
    files = kmip.clients["alice"]
    with connect(kmip.port, files, str(files.ca)) as sock:
        sock.sendall(garbage)
        (item,) = results(read_message(sock))
        assert status(item) == (ResultStatus.OPERATION_FAILED, ResultReason.INVALID_MESSAGE)
        sock.sendall(request((1, 2), (Operation.QUERY, [])))
        (ok,) = results(read_message(sock))
        assert status(ok)[0] == ResultStatus.SUCCESS


def test_lost_framing_gets_an_error_then_close(kmip: KmipServerInfo) -> None:
    files = kmip.clients["alice"]
    with connect(kmip.port, files, str(files.ca)) as sock:
        sock.sendall(struct.pack(">II", 0x42007802, 4))  # a message that is not a structure
        (item,) = results(read_message(sock))
        assert status(item)[1] == ResultReason.INVALID_MESSAGE
        assert sock.recv(1) == b""


def test_oversized_message_is_refused_before_it_is_read(kmip: KmipServerInfo) -> None:
    files = kmip.clients["alice"]
    with connect(kmip.port, files, str(files.ca)) as sock:
        sock.sendall(struct.pack(">II", 0x42007801, 0x7FFFFFF0))
        (item,) = results(read_message(sock))
        assert status(item)[1] == ResultReason.INVALID_MESSAGE


def test_no_client_certificate_no_session(kmip: KmipServerInfo) -> None:
    files = kmip.clients["alice"]
    with (
        pytest.raises((ssl.SSLError, ConnectionError, OSError)),
        connect(kmip.port, None, str(files.ca)) as sock,
    ):
        sock.sendall(request((1, 2), (Operation.QUERY, [])))
        read_message(sock)


def test_audit_chain_holds_kmip_events_without_material(kmip: KmipServerInfo) -> None:
    _call(kmip, request((1, 2), (Operation.QUERY, [])))
    kmip.service.audit.flush()
    bodies = kmip.service.store.read(lambda tx: tx.read_audit(0, 100000))
    events = [json.loads(r.body) for r in bodies]
    kmip_events = [e for e in events if str(e.get("operation", "")).startswith("kmip:")]
    assert any(e["operation"] == "kmip:Query" and e["result"] == "Success" for e in kmip_events)
    sealing = [e for e in events if e.get("operation") in ("GenerateDataKey", "Decrypt")]
    assert sealing and all("/kmip/" in e["principal"] for e in sealing)
    assert all(e["accessKeyId"].startswith("kmip:") for e in kmip_events)


def test_limits(tmp_path: Path) -> None:
    limits = Limits(
        max_connections=2, idle_timeout_s=1.0, read_timeout_s=1.0, handshake_timeout_s=1.0
    )
    with kmip_server(tmp_path, ("alice",), limits) as info:
        files = info.clients["alice"]
        # a client that stops in the middle of a message is cut off by the read timeout
        with connect(info.port, files, str(files.ca)) as slow:
            slow.sendall(struct.pack(">II", 0x42007801, 64))
            slow.settimeout(5)
            assert slow.recv(1) == b""
        # a raw TCP peer that never handshakes is dropped by the handshake timeout
        idle = socket.create_connection(("127.0.0.1", info.port))
        idle.settimeout(5)
        assert idle.recv(1) == b""
        idle.close()
        # the cap: with two sessions open, a third connection is closed at once
        first = connect(info.port, files, str(files.ca))
        second = connect(info.port, files, str(files.ca))
        first.sendall(request((1, 2), (Operation.QUERY, [])))
        read_message(first)
        second.sendall(request((1, 2), (Operation.QUERY, [])))
        read_message(second)
        with (
            pytest.raises((ssl.SSLError, ConnectionError, OSError)),
            connect(info.port, files, str(files.ca)) as third,
        ):
            third.sendall(request((1, 2), (Operation.QUERY, [])))
            read_message(third)
        first.close()
        second.close()
        deadline = time.monotonic() + 5
        while True:  # slots come back once the server sees the closes
            try:
                with connect(info.port, files, str(files.ca)) as again:
                    again.sendall(request((1, 2), (Operation.QUERY, [])))
                    assert status(results(read_message(again))[0])[0] == ResultStatus.SUCCESS
                break
            except (ssl.SSLError, ConnectionError, OSError):
                assert time.monotonic() < deadline
                time.sleep(0.05)


def test_revoked_client_is_refused(tmp_path: Path) -> None:
    from strongroom.kmip import clients as registry

    with kmip_server(tmp_path, ("alice",)) as info:
        files = info.clients["alice"]
        registry.revoke_client(info.service.store, files.client.fingerprint)
        with connect(info.port, files, str(files.ca)) as sock:
            sock.sendall(request((1, 2), (Operation.QUERY, [])))
            (item,) = results(read_message(sock))
            assert status(item)[1] == ResultReason.AUTHENTICATION_NOT_SUCCESSFUL
