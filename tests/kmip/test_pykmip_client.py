"""PyKMIP's client (a third party's encoder) runs every served operation over TLS."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from strongroom.kmip.tags import Operation, Tag
from strongroom.kmip.ttlv import text
from strongroom.testing.kmip import KmipServerInfo
from strongroom.testing.kmip_client import connect, read_message, request, results

kmip_pie = pytest.importorskip("kmip.pie.client")
from kmip.core import enums  # noqa: E402
from kmip.pie import exceptions as pie_exceptions  # noqa: E402
from kmip.pie import objects  # noqa: E402

# PyKMIP ships no type information: its ProxyKmipClient is Any to mypy.
Client = Any

CBC = {
    "block_cipher_mode": enums.BlockCipherMode.CBC,
    "padding_method": enums.PaddingMethod.PKCS5,
    "cryptographic_algorithm": enums.CryptographicAlgorithm.AES,
}


def _client(info: KmipServerInfo, tenant: str, version: enums.KMIPVersion) -> Client:
    files = info.clients[tenant]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client = kmip_pie.ProxyKmipClient(
            hostname="127.0.0.1",
            port=info.port,
            cert=str(files.cert),
            key=str(files.key),
            ca=str(files.ca),
            config_file="/dev/null",
            kmip_version=version,
        )
        client.open()
    return client


@pytest.fixture
def alice(kmip: KmipServerInfo) -> Iterator[Client]:
    client = _client(kmip, "alice", enums.KMIPVersion.KMIP_1_2)
    yield client
    client.close()


@pytest.fixture
def bob(kmip: KmipServerInfo) -> Iterator[Client]:
    client = _client(kmip, "bob", enums.KMIPVersion.KMIP_1_2)
    yield client
    client.close()


def test_symmetric_key_lifecycle(alice: Client) -> None:
    uid = alice.create(enums.CryptographicAlgorithm.AES, 256, name="orders-key")
    _, attrs = alice.get_attributes(uid, ["State"])
    assert attrs[0].attribute_value.value == enums.State.PRE_ACTIVE
    with pytest.raises(pie_exceptions.KmipOperationFailure):  # not active yet
        alice.encrypt(b"x", uid=uid, cryptographic_parameters=CBC)
    alice.activate(uid)
    data, iv = alice.encrypt(b"attack at dawn", uid=uid, cryptographic_parameters=CBC)
    assert b"attack" not in data
    assert alice.decrypt(data, uid=uid, iv_counter_nonce=iv, cryptographic_parameters=CBC) == (
        b"attack at dawn"
    )
    with pytest.raises(pie_exceptions.KmipOperationFailure) as refused:
        alice.get(uid)  # created here, not extractable
    assert refused.value.reason == enums.ResultReason.NOT_EXTRACTABLE
    with pytest.raises(pie_exceptions.KmipOperationFailure):
        alice.destroy(uid)  # active: revoke first
    alice.revoke(enums.RevocationReasonCode.CESSATION_OF_OPERATION, uid)
    _, attrs = alice.get_attributes(uid, ["State"])
    assert attrs[0].attribute_value.value == enums.State.DEACTIVATED
    # deactivated keys still decrypt, never encrypt
    assert alice.decrypt(data, uid=uid, iv_counter_nonce=iv, cryptographic_parameters=CBC)
    with pytest.raises(pie_exceptions.KmipOperationFailure):
        alice.encrypt(b"x", uid=uid, cryptographic_parameters=CBC)
    alice.destroy(uid)
    _, attrs = alice.get_attributes(uid, ["State", "Destroy Date"])
    assert attrs[0].attribute_value.value == enums.State.DESTROYED
    with pytest.raises(pie_exceptions.KmipOperationFailure):
        alice.decrypt(data, uid=uid, iv_counter_nonce=iv, cryptographic_parameters=CBC)


def test_compromise_moves_to_compromised(alice: Client) -> None:
    uid = alice.create(enums.CryptographicAlgorithm.AES, 128)
    alice.activate(uid)
    alice.revoke(enums.RevocationReasonCode.KEY_COMPROMISE, uid)
    _, attrs = alice.get_attributes(uid, ["State"])
    assert attrs[0].attribute_value.value == enums.State.COMPROMISED
    alice.destroy(uid)
    _, attrs = alice.get_attributes(uid, ["State"])
    assert attrs[0].attribute_value.value == enums.State.DESTROYED_COMPROMISED


def test_register_get_secret_data_and_symmetric_key(alice: Client) -> None:
    secret = objects.SecretData(b"\x07" * 96, enums.SecretDataType.SEED)
    uid = alice.register(secret)
    assert alice.get(uid).value == b"\x07" * 96
    key = objects.SymmetricKey(enums.CryptographicAlgorithm.AES, 128, b"\x01" * 16)
    kid = alice.register(key)
    got = alice.get(kid)
    assert got.value == b"\x01" * 16
    assert got.cryptographic_algorithm == enums.CryptographicAlgorithm.AES


def test_gcm_encrypt_decrypt(alice: Client) -> None:
    uid = alice.create(enums.CryptographicAlgorithm.AES, 256)
    alice.activate(uid)
    gcm = {"block_cipher_mode": enums.BlockCipherMode.GCM}
    data, iv = alice.encrypt(b"field", uid=uid, cryptographic_parameters=gcm)
    assert len(iv) == 12
    assert len(data) == len(b"field") + 16  # KMIP 1.2 has no tag item: the tag ends the data
    assert alice.decrypt(data, uid=uid, iv_counter_nonce=iv, cryptographic_parameters=gcm) == (
        b"field"
    )
    tampered = bytes([data[0] ^ 1]) + data[1:]
    with pytest.raises(pie_exceptions.KmipOperationFailure) as refused:
        alice.decrypt(tampered, uid=uid, iv_counter_nonce=iv, cryptographic_parameters=gcm)
    assert refused.value.reason == enums.ResultReason.CRYPTOGRAPHIC_FAILURE


def test_mac(alice: Client) -> None:
    uid = alice.create(
        enums.CryptographicAlgorithm.HMAC_SHA256,
        256,
        cryptographic_usage_mask=[enums.CryptographicUsageMask.MAC_GENERATE],
    )
    alice.activate(uid)
    _, mac = alice.mac(b"data", uid=uid, algorithm=enums.CryptographicAlgorithm.HMAC_SHA256)
    assert len(mac) == 32
    _, again = alice.mac(b"data", uid=uid, algorithm=enums.CryptographicAlgorithm.HMAC_SHA256)
    assert mac == again


def test_locate_and_attribute_edits(alice: Client) -> None:
    from kmip.core import objects as cobjects
    from kmip.core.factories.attributes import AttributeFactory

    uid = alice.create(enums.CryptographicAlgorithm.AES, 256, name="located-key")
    factory = AttributeFactory()
    name = factory.create_attribute(enums.AttributeType.NAME, "located-key")
    assert alice.locate(attributes=[name]) == [uid]
    names = alice.get_attribute_list(uid)
    assert {"State", "Name", "Cryptographic Algorithm", "Unique Identifier"} <= set(names)
    renamed = factory.create_attribute(enums.AttributeType.NAME, "renamed-key")
    alice.modify_attribute(
        uid,
        attribute=cobjects.Attribute(
            attribute_name=cobjects.Attribute.AttributeName("Name"),
            attribute_value=renamed.attribute_value,
        ),
    )
    assert alice.locate(attributes=[name]) == []
    assert alice.locate(attributes=[renamed]) == [uid]
    alice.delete_attribute(uid, attribute_name="Name")
    assert "Name" not in alice.get_attribute_list(uid)
    from kmip.core.exceptions import OperationFailure

    with pytest.raises(OperationFailure, match="set by the server"):
        alice.delete_attribute(uid, attribute_name="State")


def test_tenants_do_not_see_each_other(alice: Client, bob: Client) -> None:
    uid = alice.register(objects.SecretData(b"alice-only" * 4, enums.SecretDataType.PASSWORD))
    with pytest.raises(pie_exceptions.KmipOperationFailure) as refused:
        bob.get(uid)
    assert refused.value.reason == enums.ResultReason.ITEM_NOT_FOUND
    assert uid not in bob.locate()
    with pytest.raises(pie_exceptions.KmipOperationFailure):
        bob.destroy(uid)


def test_kmip_2_0_client(kmip: KmipServerInfo) -> None:
    client = _client(kmip, "alice", enums.KMIPVersion.KMIP_2_0)
    try:
        uid = client.create(enums.CryptographicAlgorithm.AES, 256, name="v2-key")
        client.activate(uid)
        data, iv = client.encrypt(b"two point oh", uid=uid, cryptographic_parameters=CBC)
        assert client.decrypt(data, uid=uid, iv_counter_nonce=iv, cryptographic_parameters=CBC) == (
            b"two point oh"
        )
        _, attrs = client.get_attributes(uid, ["State", "Name"])
        assert attrs
        assert uid in client.locate()
        client.set_attribute(uid, attribute_name="Sensitive", attribute_value=True)
        _, attrs = client.get_attributes(uid, ["Sensitive"])
        assert attrs
        client.revoke(enums.RevocationReasonCode.SUPERSEDED, uid)
        client.destroy(uid)
    finally:
        client.close()


def _links(kmip: KmipServerInfo, uid: str) -> dict[int, str]:
    """The object's links, read over raw TTLV (PyKMIP's client cannot decode a Link)."""
    files = kmip.clients["alice"]
    payload = [text(Tag.UNIQUE_IDENTIFIER, uid), text(Tag.ATTRIBUTE_NAME, "Link")]
    with connect(kmip.port, files, str(files.ca)) as sock:
        sock.sendall(request((1, 2), (Operation.GET_ATTRIBUTES, payload)))
        (item,) = results(read_message(sock))
    answer = item.find(Tag.RESPONSE_PAYLOAD)
    assert answer is not None
    found = {}
    for attribute in answer.find_all(Tag.ATTRIBUTE):
        value = attribute.find(Tag.ATTRIBUTE_VALUE)
        assert value is not None
        kind, target = value.find(Tag.LINK_TYPE), value.find(Tag.LINKED_OBJECT_IDENTIFIER)
        assert kind is not None and target is not None
        found[int(kind.value)] = str(target.value)  # type: ignore[arg-type]
    return found


def test_rekey_replaces_a_key_and_links_both(kmip: KmipServerInfo, alice: Client) -> None:
    old = alice.create(enums.CryptographicAlgorithm.AES, 256, name="rotating-key")
    alice.activate(old)
    data, iv = alice.encrypt(b"before rekey", uid=old, cryptographic_parameters=CBC)
    new = alice.rekey(uid=old)
    assert new != old
    assert _links(kmip, old) == {enums.LinkType.REPLACEMENT_OBJECT_LINK.value: new}
    assert _links(kmip, new) == {enums.LinkType.REPLACED_OBJECT_LINK.value: old}
    _, attrs = alice.get_attributes(new, ["State", "Cryptographic Length", "Name"])
    found = {a.attribute_name.value: a.attribute_value for a in attrs}
    assert found["State"].value == enums.State.ACTIVE  # the old key was active
    assert found["Cryptographic Length"].value == 256
    assert found["Name"].name_value.value == "rotating-key"  # names move to the replacement
    _, old_attrs = alice.get_attributes(old, ["Name", "State"])
    assert [a.attribute_name.value for a in old_attrs] == ["State"]
    # fresh material: the new key cannot open what the old one sealed; the old one still can
    try:  # CBC: a wrong key fails the padding check, or gives other bytes
        opened = alice.decrypt(data, uid=new, iv_counter_nonce=iv, cryptographic_parameters=CBC)
    except pie_exceptions.KmipOperationFailure:
        opened = None
    assert opened != b"before rekey"
    assert alice.decrypt(data, uid=old, iv_counter_nonce=iv, cryptographic_parameters=CBC) == (
        b"before rekey"
    )
    sealed, iv2 = alice.encrypt(b"after", uid=new, cryptographic_parameters=CBC)
    assert alice.decrypt(sealed, uid=new, iv_counter_nonce=iv2, cryptographic_parameters=CBC) == (
        b"after"
    )


def test_rekey_with_an_offset_is_pre_active_until_then(alice: Client) -> None:
    old = alice.create(enums.CryptographicAlgorithm.AES, 128)
    alice.activate(old)
    new = alice.rekey(uid=old, offset=3600)
    _, attrs = alice.get_attributes(new, ["State", "Activation Date"])
    found = {a.attribute_name.value: a.attribute_value.value for a in attrs}
    assert found["State"] == enums.State.PRE_ACTIVE
    assert found["Activation Date"] > 3000 + int(time.time())


def test_rekey_refuses_destroyed_keys_and_secret_data(alice: Client) -> None:
    uid = alice.create(enums.CryptographicAlgorithm.AES, 128)
    alice.destroy(uid)
    with pytest.raises(pie_exceptions.KmipOperationFailure) as refused:
        alice.rekey(uid=uid)
    assert refused.value.reason == enums.ResultReason.PERMISSION_DENIED
    secret = alice.register(objects.SecretData(b"\x07" * 32, enums.SecretDataType.SEED))
    with pytest.raises(pie_exceptions.KmipOperationFailure) as refused:
        alice.rekey(uid=secret)
    assert refused.value.reason == enums.ResultReason.ILLEGAL_OPERATION
