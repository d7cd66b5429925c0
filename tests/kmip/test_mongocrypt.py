"""MongoDB client-side field level encryption: libmongocrypt (pymongocrypt) against Strongroom.

libmongocrypt's own KMIP code creates the data keys: the default flow registers a 96-byte
SecretData and gets it back; the delegated flow creates an AES key on the server and has
it encrypt and decrypt the data key (the key never leaves). Explicit encryption, no mongod:
the key vault is a list in this test.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from typing import Any

import pytest

from strongroom.testing.kmip import KmipServerInfo

bson = pytest.importorskip("bson")
pytest.importorskip("pymongocrypt")
from bson.binary import STANDARD, Binary  # noqa: E402
from bson.codec_options import CodecOptions  # noqa: E402
from pymongocrypt.errors import MongoCryptError  # noqa: E402
from pymongocrypt.options import MongoCryptOptions  # noqa: E402
from pymongocrypt.synchronous.explicit_encrypter import ExplicitEncrypter  # noqa: E402
from pymongocrypt.synchronous.state_machine import MongoCryptCallback  # noqa: E402

OPTS: CodecOptions[dict[str, Any]] = CodecOptions(uuid_representation=STANDARD)
ALGORITHM = "AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic"


class KeyVaultInMemory(MongoCryptCallback):  # type: ignore[misc]
    """What a driver does for libmongocrypt: KMIP over TLS with a client certificate."""

    def __init__(self, cert: str, key: str, ca: str) -> None:
        self.keys: list[dict[str, Any]] = []
        self.context = ssl.create_default_context(cafile=ca)
        self.context.load_cert_chain(cert, key)

    def kms_request(self, kms_context: Any) -> None:
        host, _, port = kms_context.endpoint.partition(":")
        with socket.create_connection((host, int(port)), timeout=10) as raw:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as pymongo does
            with self.context.wrap_socket(raw, server_hostname=host) as sock:
                sock.sendall(kms_context.message)
                while kms_context.bytes_needed > 0:
                    data = sock.recv(kms_context.bytes_needed)
                    if not data:
                        raise ConnectionError("KMIP server closed the connection")
                    kms_context.feed(data)

    def collection_info(self, database: str, filter: bytes) -> None:
        raise NotImplementedError

    def mark_command(self, database: str, cmd: bytes) -> bytes:
        raise NotImplementedError

    def fetch_keys(self, filter: bytes) -> Iterator[bytes]:
        wanted = bson.decode(filter, codec_options=OPTS)
        ids: set[Any] = set()
        for clause in wanted.get("$or", [wanted]):
            ids |= set(clause.get("_id", {}).get("$in", []))
        for key in self.keys:
            if key["_id"] in ids:
                yield bson.encode(key, codec_options=OPTS)

    def insert_data_key(self, data_key: bytes) -> Any:
        doc = bson.decode(data_key, codec_options=OPTS)
        self.keys.append(doc)
        return doc["_id"]

    def bson_encode(self, doc: Any) -> bytes:
        encoded: bytes = bson.encode(doc, codec_options=OPTS)
        return encoded

    def close(self) -> None:
        pass


@pytest.fixture
def vault(kmip: KmipServerInfo) -> KeyVaultInMemory:
    files = kmip.clients["alice"]
    return KeyVaultInMemory(str(files.cert), str(files.key), str(files.ca))


def _encrypter(kmip: KmipServerInfo, vault: KeyVaultInMemory) -> Any:
    options = MongoCryptOptions(
        {"kmip": {"endpoint": f"localhost:{kmip.port}"}}, key_expiration_ms=1
    )
    return ExplicitEncrypter(vault, options)


@pytest.mark.parametrize("delegated", [False, True], ids=["default", "delegated"])
def test_data_key_and_field_round_trip(
    kmip: KmipServerInfo, vault: KeyVaultInMemory, delegated: bool
) -> None:
    encrypter = _encrypter(kmip, vault)
    key_id = encrypter.create_data_key(
        "kmip", master_key={"delegated": True} if delegated else None
    )
    master = vault.keys[-1]["masterKey"]
    assert master["provider"] == "kmip"
    assert bool(master.get("delegated")) is delegated
    value = bson.encode({"v": "4111-1111-1111-1111"})
    ciphertext = encrypter.encrypt(value, ALGORITHM, key_id=Binary.from_uuid(key_id))
    assert b"4111" not in ciphertext
    assert bson.decode(encrypter.decrypt(ciphertext))["v"] == "4111-1111-1111-1111"
    encrypter.close()
    # a new client (empty data key cache) decrypts through the server again
    again = _encrypter(kmip, vault)
    assert bson.decode(again.decrypt(ciphertext))["v"] == "4111-1111-1111-1111"
    again.close()


def test_another_tenant_cannot_open_the_data_key(
    kmip: KmipServerInfo, vault: KeyVaultInMemory
) -> None:
    encrypter = _encrypter(kmip, vault)
    key_id = encrypter.create_data_key("kmip")
    ciphertext = encrypter.encrypt(
        bson.encode({"v": "x"}), ALGORITHM, key_id=Binary.from_uuid(key_id)
    )
    encrypter.close()
    files = kmip.clients["bob"]
    bob_vault = KeyVaultInMemory(str(files.cert), str(files.key), str(files.ca))
    bob_vault.keys = vault.keys  # bob has the key vault documents, not the KMIP object
    bob = _encrypter(kmip, bob_vault)
    with pytest.raises(MongoCryptError):
        bob.decrypt(ciphertext)
    bob.close()


def test_disabling_the_tenant_kms_key_stops_the_data_keys(
    kmip: KmipServerInfo, vault: KeyVaultInMemory
) -> None:
    encrypter = _encrypter(kmip, vault)
    key_id = encrypter.create_data_key("kmip", master_key={"delegated": True})
    ciphertext = encrypter.encrypt(
        bson.encode({"v": "y"}), ALGORITHM, key_id=Binary.from_uuid(key_id)
    )
    encrypter.close()
    client = kmip.clients["alice"].client
    kmip.service.call(client.caller, "DisableKey", {"KeyId": client.kms_key})
    try:
        blocked = _encrypter(kmip, vault)
        with pytest.raises(MongoCryptError):
            blocked.decrypt(ciphertext)
        blocked.close()
    finally:
        kmip.service.call(client.caller, "EnableKey", {"KeyId": client.kms_key})
    back = _encrypter(kmip, vault)
    assert bson.decode(back.decrypt(ciphertext))["v"] == "y"
    back.close()
