"""Import of key material, driven the way a boto3 user drives AWS KMS.

The client side wraps material with ``cryptography`` exactly as AWS documents it: RSA-OAEP
directly (``RSAES_OAEP_SHA_*``), or an AES key under RSA-OAEP followed by the material under
AES key wrap with padding (``RSA_AES_KEY_WRAP_SHA_*``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.crypto.blob import open_blob
from strongroom.errors import (
    AccessDeniedError,
    ExpiredImportTokenError,
    IncorrectKeyMaterialError,
    InvalidCiphertextError,
    InvalidImportTokenError,
    InvalidStateError,
    NotFoundError,
    UnsupportedOperationError,
    ValidationError,
)
from strongroom.kms import Caller, KeyService, ManualClock
from strongroom.kms.import_token import (
    ImportTokenHeader,
    open_token,
    seal_token,
    seal_token_with,
)
from strongroom.kms.records import KeyVersionRecord, version_name
from strongroom.testing.key_import import (
    ALGORITHMS,
    DAY,
    FOREVER,
    create_external,
    decrypt,
    describe,
    encrypt,
    import_material,
    parameters,
    wrap,
)
from strongroom.testing.service import tenant_caller


@pytest.fixture
def solo(sqlite_service: KeyService) -> Caller:
    """A caller on the SQLite-only service."""
    return tenant_caller(sqlite_service, "solo")


# -- the whole flow ------------------------------------------------------------------------


def test_import_use_delete_reimport(service: KeyService, alice: Caller, clock: ManualClock) -> None:
    meta = create_external(service, alice)
    key = meta["KeyId"]
    assert meta["KeyState"] == "PendingImport"
    assert meta["Origin"] == "EXTERNAL"
    with pytest.raises(InvalidStateError) as pending:
        encrypt(service, alice, key)
    assert pending.value.aws_type == "KMSInvalidStateException"

    params = parameters(service, alice, key)
    assert params.keys() == {"KeyId", "ImportToken", "PublicKey", "ParametersValidTo"}
    assert params["KeyId"] == meta["Arn"]
    assert params["ParametersValidTo"] == pytest.approx(clock.now() + DAY)
    wrapping = serialization.load_der_public_key(params["PublicKey"])
    assert isinstance(wrapping, rsa.RSAPublicKey)
    assert wrapping.key_size == 2048

    material = os.urandom(32)
    response = service.call(
        alice,
        "ImportKeyMaterial",
        {
            "KeyId": meta["Arn"],
            "ImportToken": params["ImportToken"],
            "EncryptedKeyMaterial": wrap(params["PublicKey"], "RSAES_OAEP_SHA_256", material),
            "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE",
        },
    )
    assert response["KeyId"] == meta["Arn"]
    material_id = response["KeyMaterialId"]
    assert len(material_id) == 64
    int(material_id, 16)
    now = describe(service, alice, key)
    assert now["KeyState"] == "Enabled"
    assert now["Enabled"] is True
    assert now["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE"
    assert "ValidTo" not in now

    blob = encrypt(service, alice, key, b"under imported material")
    # The blob really is under the imported material: open it offline with it.
    assert open_blob(material, alice.tenant, blob) == b"under imported material"
    assert decrypt(service, alice, blob) == b"under imported material"

    deleted = service.call(alice, "DeleteImportedKeyMaterial", {"KeyId": key})
    assert deleted == {"KeyId": meta["Arn"], "KeyMaterialId": material_id}
    assert describe(service, alice, key)["KeyState"] == "PendingImport"
    uses: tuple[Callable[[], object], ...] = (
        lambda: encrypt(service, alice, key),
        lambda: decrypt(service, alice, blob),
    )
    for use in uses:
        with pytest.raises(InvalidStateError) as gone:
            use()
        assert gone.value.aws_type == "KMSInvalidStateException"

    with pytest.raises(IncorrectKeyMaterialError):
        import_material(service, alice, key, os.urandom(32))
    again = import_material(service, alice, key, material, "RSA_AES_KEY_WRAP_SHA_256", "RSA_3072")
    assert again["KeyMaterialId"] == material_id
    assert describe(service, alice, key)["KeyState"] == "Enabled"
    assert decrypt(service, alice, blob) == b"under imported material"


def test_reimport_while_enabled_must_be_the_same_material(
    sqlite_service: KeyService, solo: Caller
) -> None:
    key = create_external(sqlite_service, solo)["KeyId"]
    material = os.urandom(32)
    first = import_material(sqlite_service, solo, key, material)
    with pytest.raises(IncorrectKeyMaterialError):
        import_material(sqlite_service, solo, key, os.urandom(32))
    with pytest.raises(IncorrectKeyMaterialError):
        import_material(sqlite_service, solo, key, material, KeyMaterialId="0" * 64, **FOREVER)
    same = import_material(
        sqlite_service, solo, key, material, KeyMaterialId=first["KeyMaterialId"], **FOREVER
    )
    assert same["KeyMaterialId"] == first["KeyMaterialId"]
    # DescribeKey names the imported material by the id the import answered
    assert describe(sqlite_service, solo, key)["CurrentKeyMaterialId"] == first["KeyMaterialId"]
    # the same bytes are not new material: they are already associated with the key
    with pytest.raises(IncorrectKeyMaterialError, match="already associated"):
        import_material(
            sqlite_service, solo, key, material, ImportType="NEW_KEY_MATERIAL", **FOREVER
        )
    again = import_material(
        sqlite_service, solo, key, material, ImportType="EXISTING_KEY_MATERIAL", **FOREVER
    )
    assert again["KeyMaterialId"] == first["KeyMaterialId"]
    other = create_external(sqlite_service, solo)["KeyId"]
    with pytest.raises(IncorrectKeyMaterialError, match="No key material was ever imported"):
        import_material(
            sqlite_service, solo, other, material, ImportType="EXISTING_KEY_MATERIAL", **FOREVER
        )
    # The same material in another key has another id: ids are bound to their key.
    assert (
        import_material(sqlite_service, solo, other, material)["KeyMaterialId"]
        != (first["KeyMaterialId"])
    )


@pytest.mark.parametrize(
    ("algorithm", "spec"),
    [
        ("RSAES_OAEP_SHA_1", "RSA_2048"),
        ("RSAES_OAEP_SHA_256", "RSA_3072"),
        ("RSAES_OAEP_SHA_256", "RSA_4096"),
        ("RSA_AES_KEY_WRAP_SHA_1", "RSA_3072"),
        ("RSA_AES_KEY_WRAP_SHA_256", "RSA_4096"),
    ],
)
def test_every_wrapping_algorithm_and_key_size(
    sqlite_service: KeyService, solo: Caller, algorithm: str, spec: str
) -> None:
    key = create_external(sqlite_service, solo)["KeyId"]
    params = parameters(sqlite_service, solo, key, algorithm, spec)
    public = serialization.load_der_public_key(params["PublicKey"])
    assert isinstance(public, rsa.RSAPublicKey)
    assert public.key_size == int(spec[4:])
    material = os.urandom(32)
    sqlite_service.call(
        solo,
        "ImportKeyMaterial",
        {
            "KeyId": key,
            "ImportToken": params["ImportToken"],
            "EncryptedKeyMaterial": wrap(params["PublicKey"], algorithm, material),
            **FOREVER,
        },
    )
    blob = encrypt(sqlite_service, solo, key)
    assert open_blob(material, solo.tenant, blob) == b"data"


# -- tokens --------------------------------------------------------------------------------


def test_token_expires_after_24_hours(
    service: KeyService, alice: Caller, clock: ManualClock
) -> None:
    key = create_external(service, alice)["KeyId"]
    material = os.urandom(32)
    early = parameters(service, alice, key)
    late = parameters(service, alice, key)
    clock.advance(DAY - 1)
    request = {
        "KeyId": key,
        "ImportToken": early["ImportToken"],
        "EncryptedKeyMaterial": wrap(early["PublicKey"], "RSAES_OAEP_SHA_256", material),
        **FOREVER,
    }
    service.call(alice, "ImportKeyMaterial", request)
    clock.advance(1)
    request["ImportToken"] = late["ImportToken"]
    request["EncryptedKeyMaterial"] = wrap(late["PublicKey"], "RSAES_OAEP_SHA_256", material)
    with pytest.raises(ExpiredImportTokenError) as expired:
        service.call(alice, "ImportKeyMaterial", request)
    assert expired.value.aws_type == "ExpiredImportTokenException"


def test_forged_or_foreign_tokens_are_invalid(sqlite_service: KeyService, solo: Caller) -> None:
    key = create_external(sqlite_service, solo)["KeyId"]
    other = create_external(sqlite_service, solo)["KeyId"]
    params = parameters(sqlite_service, solo, key)
    token = params["ImportToken"]
    encrypted = wrap(params["PublicKey"], "RSAES_OAEP_SHA_256", os.urandom(32))

    def attempt(candidate: bytes, target: str = key) -> None:
        sqlite_service.call(
            solo,
            "ImportKeyMaterial",
            {
                "KeyId": target,
                "ImportToken": candidate,
                "EncryptedKeyMaterial": encrypted,
                **FOREVER,
            },
        )

    forgeries = [token[:-1], token[:40], b"\x01", os.urandom(len(token)), token + b"\0"]
    for index in (0, 1, 5, len(token) - 20, len(token) - 30, len(token) - 1):
        flipped = bytearray(token)
        flipped[index] ^= 0x01
        forgeries.append(bytes(flipped))
    # A token whose expiry is pushed forward is refused, not honoured.
    id_len = token[1]
    later = bytearray(token)
    later[2 + id_len + 3 + 3] ^= 0x10
    forgeries.append(bytes(later))
    for forged in forgeries:
        with pytest.raises(InvalidImportTokenError) as bad:
            attempt(forged)
        assert bad.value.aws_type == "InvalidImportTokenException"
    with pytest.raises(InvalidImportTokenError):
        attempt(token, other)
    attempt(token)


def test_material_under_another_wrapping_key_is_invalid_ciphertext(
    sqlite_service: KeyService, solo: Caller
) -> None:
    key = create_external(sqlite_service, solo)["KeyId"]
    first = parameters(sqlite_service, solo, key)
    second = parameters(sqlite_service, solo, key)
    for encrypted in (
        wrap(second["PublicKey"], "RSAES_OAEP_SHA_256", os.urandom(32)),
        wrap(first["PublicKey"], "RSAES_OAEP_SHA_1", os.urandom(32)),
        b"\0" * 256,
        b"short",
    ):
        with pytest.raises(InvalidCiphertextError):
            sqlite_service.call(
                solo,
                "ImportKeyMaterial",
                {
                    "KeyId": key,
                    "ImportToken": first["ImportToken"],
                    "EncryptedKeyMaterial": encrypted,
                    **FOREVER,
                },
            )
    key_wrap = parameters(sqlite_service, solo, key, "RSA_AES_KEY_WRAP_SHA_256")
    good = wrap(key_wrap["PublicKey"], "RSA_AES_KEY_WRAP_SHA_256", os.urandom(32))
    tampered = bytearray(good)
    tampered[-3] ^= 1
    with pytest.raises(InvalidCiphertextError):
        sqlite_service.call(
            solo,
            "ImportKeyMaterial",
            {
                "KeyId": key,
                "ImportToken": key_wrap["ImportToken"],
                "EncryptedKeyMaterial": bytes(tampered),
                **FOREVER,
            },
        )


def test_tokens_are_bound_to_the_tenant(service: KeyService, alice: Caller, bob: Caller) -> None:
    alices = create_external(service, alice)
    bobs = create_external(service, bob)
    params = parameters(service, alice, alices["KeyId"])
    encrypted = wrap(params["PublicKey"], "RSAES_OAEP_SHA_256", os.urandom(32))
    with pytest.raises(AccessDeniedError):
        parameters(service, bob, alices["Arn"])
    with pytest.raises(NotFoundError):
        parameters(service, bob, alices["KeyId"])
    request = {"ImportToken": params["ImportToken"], "EncryptedKeyMaterial": encrypted, **FOREVER}
    with pytest.raises(AccessDeniedError):
        service.call(bob, "ImportKeyMaterial", {"KeyId": alices["Arn"], **request})
    with pytest.raises(InvalidImportTokenError):
        service.call(bob, "ImportKeyMaterial", {"KeyId": bobs["KeyId"], **request})
    with pytest.raises(AccessDeniedError):
        service.call(bob, "DeleteImportedKeyMaterial", {"KeyId": alices["Arn"]})
    service.call(alice, "ImportKeyMaterial", {"KeyId": alices["KeyId"], **request})


VECTOR_TOKEN = (
    "012431323334616263642d313261622d333463642d353665662d3132333435363738393061620208000000"
    "018bd50bc40001a0a1a2a3a4a5a6a7a8a9aaab916a1d5d35a26cd84215f5ba711bb4bb50c73c69b29f0629"
    "ce2e76cd3cf85639fb9b7ccc55949ff030370f205fd3fc27cd"
)


def test_token_vector() -> None:
    """Format v1 pinned, and rebuilt from its description in docs/formats.md with AESGCM."""
    kek, nonce = bytes(range(32)), bytes.fromhex("a0a1a2a3a4a5a6a7a8a9aaab")
    key_id = "1234abcd-12ab-34cd-56ef-1234567890ab"
    header = ImportTokenHeader(key_id, "RSAES_OAEP_SHA_256", 2048, 1_700_086_400_000)
    payload = b"wrapping private key (DER PKCS#8)"
    token = seal_token_with(kek, "111122223333", header, payload, nonce)
    assert token.hex() == VECTOR_TOKEN
    head = (
        bytes((1, len(key_id))) + key_id.encode() + struct.pack(">BHQ", 2, 2048, 1_700_086_400_000)
    )
    identity = b"".join(
        struct.pack(">I", len(part)) + part
        for part in (b"importtoken", b"111122223333", head.hex().encode())
    )
    sealed = AESGCM(kek).encrypt(nonce, payload, b"strongroom/wrap/v1" + identity)
    assert token == head + b"\x01" + nonce + sealed
    assert open_token(kek, "111122223333", token) == (header, payload)


@settings(max_examples=200, deadline=None)
@given(
    key_id=st.text(alphabet="0123456789abcdef-", min_size=1, max_size=64),
    valid_to_ms=st.integers(min_value=0, max_value=2**64 - 1),
    algorithm=st.sampled_from(ALGORITHMS),
    bits=st.sampled_from([2048, 3072, 4096]),
    payload=st.binary(min_size=1, max_size=64),
    flip=st.integers(min_value=0),
    bit=st.integers(min_value=0, max_value=7),
)
def test_token_format_round_trips_and_rejects_every_flip(
    key_id: str, valid_to_ms: int, algorithm: str, bits: int, payload: bytes, flip: int, bit: int
) -> None:
    kek = bytes(range(32))
    header = ImportTokenHeader(key_id, algorithm, bits, valid_to_ms)
    token = seal_token(kek, "111122223333", header, payload)
    assert open_token(kek, "111122223333", token) == (header, payload)
    with pytest.raises(InvalidImportTokenError):
        open_token(kek, "444455556666", token)
    with pytest.raises(InvalidImportTokenError):
        open_token(bytes(32), "111122223333", token)
    flipped = bytearray(token)
    flipped[flip % len(token)] ^= 1 << bit
    with pytest.raises(InvalidImportTokenError):
        open_token(kek, "111122223333", bytes(flipped))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_are_only_ever_an_invalid_token(data: bytes) -> None:
    with pytest.raises(InvalidImportTokenError):
        open_token(bytes(32), "111122223333", data)


# -- material checks, expiry, states ----------------------------------------------------------


@pytest.mark.parametrize("size", [16, 31, 33, 64])
def test_symmetric_material_must_be_256_bits(
    sqlite_service: KeyService, solo: Caller, size: int
) -> None:
    key = create_external(sqlite_service, solo)["KeyId"]
    with pytest.raises(IncorrectKeyMaterialError):
        import_material(sqlite_service, solo, key, os.urandom(size))
    assert describe(sqlite_service, solo, key)["KeyState"] == "PendingImport"


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"ExpirationModel": "KEY_MATERIAL_EXPIRES"},
        {"ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE", "ValidTo": 1_700_003_600.0},
        {"ExpirationModel": "KEY_MATERIAL_EXPIRES", "ValidTo": 1_699_999_999.0},
        {"ExpirationModel": "KEY_MATERIAL_EXPIRES", "ValidTo": 1_700_000_000.0 + 366 * DAY},
    ],
    ids=["nothing", "expires-without-date", "never-with-date", "past", "beyond-365-days"],
)
def test_expiration_parameters_are_validated(
    sqlite_service: KeyService, solo: Caller, extra: dict[str, Any]
) -> None:
    key = create_external(sqlite_service, solo)["KeyId"]
    params = parameters(sqlite_service, solo, key)
    with pytest.raises(ValidationError):
        sqlite_service.call(
            solo,
            "ImportKeyMaterial",
            {
                "KeyId": key,
                "ImportToken": params["ImportToken"],
                "EncryptedKeyMaterial": wrap(params["PublicKey"], "RSAES_OAEP_SHA_256", bytes(32)),
                **extra,
            },
        )


def test_material_expires_at_valid_to(
    service: KeyService, alice: Caller, clock: ManualClock
) -> None:
    meta = create_external(service, alice)
    key = meta["KeyId"]
    material = os.urandom(32)
    valid_to = clock.now() + 3600
    import_material(
        service, alice, key, material, ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=valid_to
    )
    described = describe(service, alice, key)
    assert described["ValidTo"] == valid_to
    assert described["ExpirationModel"] == "KEY_MATERIAL_EXPIRES"
    blob = encrypt(service, alice, key)
    clock.advance(3599)
    assert decrypt(service, alice, blob) == b"data"

    clock.advance(1)
    assert describe(service, alice, key)["KeyState"] == "PendingImport"
    with pytest.raises(InvalidStateError):
        decrypt(service, alice, blob)
    with pytest.raises(InvalidStateError):
        service.call(alice, "EnableKey", {"KeyId": key})

    service.run_maintenance()
    row = service.store.read(lambda tx: tx.get(alice.tenant, "keyver", version_name(key, 1)))
    assert row is not None
    assert KeyVersionRecord.from_bytes(row).wrapped_material == b""
    service.audit.flush()
    events = service.store.read(lambda tx: tx.read_audit(0, 100_000))
    assert any(b"DeleteExpiredKeyMaterial" in e.body and key.encode() in e.body for e in events)

    import_material(service, alice, key, material)
    assert describe(service, alice, key)["KeyState"] == "Enabled"
    assert decrypt(service, alice, blob) == b"data"


def test_import_and_deletion_in_other_states(service: KeyService, alice: Caller) -> None:
    key = create_external(service, alice)["KeyId"]
    material = os.urandom(32)
    import_material(service, alice, key, material)
    service.call(alice, "DisableKey", {"KeyId": key})
    import_material(service, alice, key, material)
    assert describe(service, alice, key)["KeyState"] == "Disabled"

    service.call(alice, "ScheduleKeyDeletion", {"KeyId": key, "PendingWindowInDays": 7})
    with pytest.raises(InvalidStateError):
        parameters(service, alice, key)
    with pytest.raises(InvalidStateError):
        import_material(service, alice, key, material)
    service.call(alice, "DeleteImportedKeyMaterial", {"KeyId": key})
    assert describe(service, alice, key)["KeyState"] == "PendingDeletion"
    service.call(alice, "CancelKeyDeletion", {"KeyId": key})
    assert describe(service, alice, key)["KeyState"] == "PendingImport"
    import_material(service, alice, key, material)
    assert describe(service, alice, key)["KeyState"] == "Enabled"


def test_only_external_keys_take_imports(sqlite_service: KeyService, solo: Caller) -> None:
    key = sqlite_service.call(solo, "CreateKey", {})["KeyMetadata"]["KeyId"]
    with pytest.raises(UnsupportedOperationError):
        parameters(sqlite_service, solo, key)
    external = create_external(sqlite_service, solo)["KeyId"]
    params = parameters(sqlite_service, solo, external)
    with pytest.raises(UnsupportedOperationError):
        sqlite_service.call(
            solo,
            "ImportKeyMaterial",
            {
                "KeyId": key,
                "ImportToken": params["ImportToken"],
                "EncryptedKeyMaterial": bytes(256),
                **FOREVER,
            },
        )
    with pytest.raises(UnsupportedOperationError):
        sqlite_service.call(solo, "DeleteImportedKeyMaterial", {"KeyId": key})


@pytest.mark.parametrize(
    ("algorithm", "spec"),
    [("RSAES_PKCS1_V1_5", "RSA_2048"), ("SM2PKE", "RSA_2048"), ("RSAES_OAEP_SHA_256", "SM2")],
)
def test_unsupported_wrapping_parameters(
    sqlite_service: KeyService, solo: Caller, algorithm: str, spec: str
) -> None:
    key = create_external(sqlite_service, solo)["KeyId"]
    with pytest.raises(UnsupportedOperationError):
        parameters(sqlite_service, solo, key, algorithm, spec)


def test_audit_holds_no_material(service: KeyService, alice: Caller) -> None:
    key = create_external(service, alice)["KeyId"]
    material = os.urandom(32)
    import_material(service, alice, key, material)
    service.call(alice, "DeleteImportedKeyMaterial", {"KeyId": key})
    service.audit.flush()
    bodies = b"".join(r.body for r in service.store.read(lambda tx: tx.read_audit(0, 100_000)))
    assert b"ImportKeyMaterial" in bodies
    for form in (material, material.hex().encode(), base64.b64encode(material)):
        assert form not in bodies


# -- HMAC and asymmetric material ---------------------------------------------------------------


def test_imported_hmac_key_macs_like_stdlib_hmac(sqlite_service: KeyService, solo: Caller) -> None:
    key = create_external(sqlite_service, solo, "HMAC_256", "GENERATE_VERIFY_MAC")["KeyId"]
    material = os.urandom(40)
    import_material(sqlite_service, solo, key, material)
    response = sqlite_service.call(
        solo, "GenerateMac", {"KeyId": key, "Message": b"msg", "MacAlgorithm": "HMAC_SHA_256"}
    )
    assert response["Mac"] == hmac.new(material, b"msg", hashlib.sha256).digest()
    long_key = create_external(sqlite_service, solo, "HMAC_384", "GENERATE_VERIFY_MAC")["KeyId"]
    with pytest.raises(IncorrectKeyMaterialError):
        import_material(sqlite_service, solo, long_key, os.urandom(47))
    with pytest.raises(IncorrectKeyMaterialError):
        import_material(sqlite_service, solo, long_key, os.urandom(129))
    import_material(sqlite_service, solo, long_key, os.urandom(128))


def _pkcs8(private: Any) -> bytes:
    der: bytes = private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return der


def _spki(public: Any) -> bytes:
    der: bytes = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return der


def test_imported_ecc_key_signs_and_verifies(sqlite_service: KeyService, solo: Caller) -> None:
    key = create_external(sqlite_service, solo, "ECC_NIST_P256", "SIGN_VERIFY")["KeyId"]
    with pytest.raises(IncorrectKeyMaterialError):
        import_material(sqlite_service, solo, key, _pkcs8(ec.generate_private_key(ec.SECP384R1())))
    with pytest.raises(IncorrectKeyMaterialError):
        import_material(sqlite_service, solo, key, b"not a private key at all")
    private = ec.generate_private_key(ec.SECP256R1())
    import_material(sqlite_service, solo, key, _pkcs8(private))
    public = sqlite_service.call(solo, "GetPublicKey", {"KeyId": key})["PublicKey"]
    assert public == _spki(private.public_key())

    signature = sqlite_service.call(
        solo, "Sign", {"KeyId": key, "Message": b"m", "SigningAlgorithm": "ECDSA_SHA_256"}
    )["Signature"]
    private.public_key().verify(signature, b"m", ec.ECDSA(hashes.SHA256()))
    offline = private.sign(b"offline", ec.ECDSA(hashes.SHA256()))
    checked = sqlite_service.call(
        solo,
        "Verify",
        {
            "KeyId": key,
            "Message": b"offline",
            "Signature": offline,
            "SigningAlgorithm": "ECDSA_SHA_256",
        },
    )
    assert checked["SignatureValid"] is True


def test_imported_rsa_key_needs_aes_key_wrap_and_decrypts(
    sqlite_service: KeyService, solo: Caller
) -> None:
    key = create_external(sqlite_service, solo, "RSA_2048", "ENCRYPT_DECRYPT")["KeyId"]
    with pytest.raises(ValidationError):
        parameters(sqlite_service, solo, key, "RSAES_OAEP_SHA_256")
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(IncorrectKeyMaterialError):
        import_material(
            sqlite_service,
            solo,
            key,
            _pkcs8(rsa.generate_private_key(public_exponent=65537, key_size=3072)),
            "RSA_AES_KEY_WRAP_SHA_256",
        )
    import_material(sqlite_service, solo, key, _pkcs8(private), "RSA_AES_KEY_WRAP_SHA_256")
    digest = hashes.SHA256()
    ciphertext = private.public_key().encrypt(
        b"to the service",
        padding.OAEP(mgf=padding.MGF1(digest), algorithm=digest, label=None),
    )
    plain = sqlite_service.call(
        solo,
        "Decrypt",
        {"KeyId": key, "CiphertextBlob": ciphertext, "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"},
    )
    assert plain["Plaintext"] == b"to the service"
    p521 = create_external(sqlite_service, solo, "ECC_NIST_P521", "SIGN_VERIFY")["KeyId"]
    with pytest.raises(ValidationError):
        parameters(sqlite_service, solo, p521, "RSAES_OAEP_SHA_1", "RSA_2048")
