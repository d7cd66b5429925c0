"""boto3 against a Strongroom server over HTTPS: Sign/Verify, GetPublicKey, RSA encryption,
GenerateMac/VerifyMac, GenerateDataKeyPair(+WithoutPlaintext) and key material import.

Signatures, public keys, data key pairs and imported material are checked with
``cryptography`` on the client side, so the server cannot agree with itself by mistake.
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, padding, rsa, utils
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

from strongroom.testing.e2e_server import RunningServer
from strongroom.testing.http import aws_error, request_counts

HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA_256": hashes.SHA256,
    "SHA_384": hashes.SHA384,
    "SHA_512": hashes.SHA512,
}
SIGNING: list[tuple[str, str]] = [
    ("RSA_2048", "RSASSA_PSS_SHA_256"),
    ("RSA_2048", "RSASSA_PSS_SHA_384"),
    ("RSA_2048", "RSASSA_PSS_SHA_512"),
    ("RSA_2048", "RSASSA_PKCS1_V1_5_SHA_256"),
    ("RSA_2048", "RSASSA_PKCS1_V1_5_SHA_384"),
    ("RSA_2048", "RSASSA_PKCS1_V1_5_SHA_512"),
    ("ECC_NIST_P256", "ECDSA_SHA_256"),
    ("ECC_NIST_P384", "ECDSA_SHA_384"),
    ("ECC_NIST_P521", "ECDSA_SHA_512"),
    ("ECC_SECG_P256K1", "ECDSA_SHA_256"),
]


@pytest.fixture(scope="module")
def key_of(kms: Any) -> Any:
    """``key_of(spec, usage)``: one key per spec and usage for the module, made on first use."""
    made: dict[tuple[str, str], dict[str, Any]] = {}

    def get(spec: str, usage: str) -> dict[str, Any]:
        if (spec, usage) not in made:
            made[spec, usage] = kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]
        return made[spec, usage]

    return get


def verify_locally(
    public_der: bytes, algorithm: str, signature: bytes, message: bytes, digest: bool
) -> None:
    """Raise ``InvalidSignature`` unless ``signature`` is valid (as AWS KMS defines it)."""
    public = serialization.load_der_public_key(public_der)
    chosen: Any = HASHES[algorithm[-7:]]()
    if digest:
        chosen = utils.Prehashed(chosen)
    if algorithm.startswith("ECDSA"):
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(signature, message, ec.ECDSA(chosen))
        return
    assert isinstance(public, rsa.RSAPublicKey)
    if algorithm.startswith("RSASSA_PSS"):
        size = HASHES[algorithm[-7:]]().digest_size
        pad: padding.AsymmetricPadding = padding.PSS(
            mgf=padding.MGF1(HASHES[algorithm[-7:]]()), salt_length=size
        )
    else:
        pad = padding.PKCS1v15()
    public.verify(signature, message, pad, chosen)


# -- Sign, Verify, GetPublicKey --------------------------------------------------------------


@pytest.mark.parametrize(("spec", "algorithm"), SIGNING, ids=[a for _, a in SIGNING])
def test_sign_and_verify(kms: Any, key_of: Any, spec: str, algorithm: str) -> None:
    meta = key_of(spec, "SIGN_VERIFY")
    public = kms.get_public_key(KeyId=meta["KeyId"])
    assert public["KeyId"] == meta["Arn"]
    assert (public["KeySpec"], public["KeyUsage"]) == (spec, "SIGN_VERIFY")
    assert algorithm in public["SigningAlgorithms"]
    message = b"message to sign " + spec.encode()
    digest = hashlib.new(algorithm[-7:].replace("_", "").lower(), message).digest()
    for kind, payload in (("RAW", message), ("DIGEST", digest)):
        signed = kms.sign(
            KeyId=meta["KeyId"], Message=payload, MessageType=kind, SigningAlgorithm=algorithm
        )
        assert (signed["KeyId"], signed["SigningAlgorithm"]) == (meta["Arn"], algorithm)
        verify_locally(
            public["PublicKey"], algorithm, signed["Signature"], payload, kind == "DIGEST"
        )
        checked = kms.verify(
            KeyId=meta["Arn"],
            Message=payload,
            MessageType=kind,
            Signature=signed["Signature"],
            SigningAlgorithm=algorithm,
        )
        assert checked["SignatureValid"] is True
        failure = aws_error(
            kms.verify,
            KeyId=meta["KeyId"],
            Message=payload[:-1] + bytes([payload[-1] ^ 1]),
            MessageType=kind,
            Signature=signed["Signature"],
            SigningAlgorithm=algorithm,
        )
        assert (failure.code, failure.status) == ("KMSInvalidSignatureException", 400)


def test_signing_refusals(kms: Any, key_of: Any) -> None:
    ecc = key_of("ECC_NIST_P256", "SIGN_VERIFY")
    symmetric = key_of("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
    failure = aws_error(
        kms.sign, KeyId=ecc["KeyId"], Message=b"m", SigningAlgorithm="ECDSA_SHA_384"
    )
    assert (failure.code, failure.status) == ("InvalidKeyUsageException", 400)
    failure = aws_error(
        kms.sign, KeyId=symmetric["KeyId"], Message=b"m", SigningAlgorithm="ECDSA_SHA_256"
    )
    assert (failure.code, failure.status) == ("InvalidKeyUsageException", 400)
    failure = aws_error(
        kms.sign,
        KeyId=ecc["KeyId"],
        Message=b"short digest",
        MessageType="DIGEST",
        SigningAlgorithm="ECDSA_SHA_256",
    )
    assert (failure.code, failure.status) == ("ValidationException", 400)
    failure = aws_error(kms.encrypt, KeyId=ecc["KeyId"], Plaintext=b"m")
    assert (failure.code, failure.status) == ("InvalidKeyUsageException", 400)
    failure = aws_error(kms.get_public_key, KeyId=symmetric["KeyId"])
    assert (failure.code, failure.status) == ("UnsupportedOperationException", 400)
    failure = aws_error(
        kms.sign, KeyId=ecc["KeyId"], Message=b"m", SigningAlgorithm="ECDSA_SHA_256", DryRun=True
    )
    assert (failure.code, failure.status) == ("DryRunOperationException", 400)


# -- RSA encryption --------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"])
def test_rsa_encryption(kms: Any, key_of: Any, algorithm: str) -> None:
    meta = key_of("RSA_2048", "ENCRYPT_DECRYPT")
    public_info = kms.get_public_key(KeyId=meta["KeyId"])
    assert public_info["EncryptionAlgorithms"] == ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]
    out = kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"rsa secret", EncryptionAlgorithm=algorithm)
    assert len(out["CiphertextBlob"]) == 256
    back = kms.decrypt(
        KeyId=meta["Arn"], CiphertextBlob=out["CiphertextBlob"], EncryptionAlgorithm=algorithm
    )
    assert (back["Plaintext"], back["EncryptionAlgorithm"]) == (b"rsa secret", algorithm)
    public = serialization.load_der_public_key(public_info["PublicKey"])
    assert isinstance(public, rsa.RSAPublicKey)
    chosen = hashes.SHA1() if algorithm.endswith("SHA_1") else hashes.SHA256()
    local = public.encrypt(
        b"sealed locally",
        padding.OAEP(mgf=padding.MGF1(chosen), algorithm=chosen, label=None),
    )
    back = kms.decrypt(KeyId=meta["KeyId"], CiphertextBlob=local, EncryptionAlgorithm=algorithm)
    assert back["Plaintext"] == b"sealed locally"
    failure = aws_error(
        kms.decrypt,
        KeyId=meta["KeyId"],
        CiphertextBlob=local[:-1] + bytes([local[-1] ^ 1]),
        EncryptionAlgorithm=algorithm,
    )
    assert (failure.code, failure.status) == ("InvalidCiphertextException", 400)
    failure = aws_error(
        kms.encrypt, KeyId=meta["KeyId"], Plaintext=b"x" * 300, EncryptionAlgorithm=algorithm
    )
    assert (failure.code, failure.status) == ("ValidationException", 400)


# -- HMAC ------------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [224, 256, 384, 512])
def test_generate_and_verify_mac(kms: Any, key_of: Any, bits: int) -> None:
    meta = key_of(f"HMAC_{bits}", "GENERATE_VERIFY_MAC")
    algorithm = f"HMAC_SHA_{bits}"
    out = kms.generate_mac(KeyId=meta["KeyId"], Message=b"mac me", MacAlgorithm=algorithm)
    assert (out["KeyId"], out["MacAlgorithm"]) == (meta["Arn"], algorithm)
    assert len(out["Mac"]) == bits // 8
    again = kms.generate_mac(KeyId=meta["Arn"], Message=b"mac me", MacAlgorithm=algorithm)
    assert again["Mac"] == out["Mac"]
    checked = kms.verify_mac(
        KeyId=meta["KeyId"], Message=b"mac me", Mac=out["Mac"], MacAlgorithm=algorithm
    )
    assert checked["MacValid"] is True
    failure = aws_error(
        kms.verify_mac,
        KeyId=meta["KeyId"],
        Message=b"mac mE",
        Mac=out["Mac"],
        MacAlgorithm=algorithm,
    )
    assert (failure.code, failure.status) == ("KMSInvalidMacException", 400)
    other = "HMAC_SHA_256" if bits != 256 else "HMAC_SHA_512"
    failure = aws_error(kms.generate_mac, KeyId=meta["KeyId"], Message=b"m", MacAlgorithm=other)
    assert (failure.code, failure.status) == ("InvalidKeyUsageException", 400)


def test_mac_refusals(kms: Any, key_of: Any) -> None:
    symmetric = key_of("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
    failure = aws_error(
        kms.generate_mac, KeyId=symmetric["KeyId"], Message=b"m", MacAlgorithm="HMAC_SHA_256"
    )
    assert (failure.code, failure.status) == ("InvalidKeyUsageException", 400)
    meta = key_of("HMAC_256", "GENERATE_VERIFY_MAC")
    failure = aws_error(
        kms.generate_mac,
        KeyId=meta["KeyId"],
        Message=b"m",
        MacAlgorithm="HMAC_SHA_256",
        DryRun=True,
    )
    assert (failure.code, failure.status) == ("DryRunOperationException", 400)


# -- data key pairs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pair_spec", ["RSA_2048", "ECC_NIST_P256", "ECC_SECG_P256K1", "ECC_NIST_EDWARDS25519"]
)
def test_generate_data_key_pair(kms: Any, key_of: Any, pair_spec: str) -> None:
    meta = key_of("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
    context = {"pair": pair_spec}
    out = kms.generate_data_key_pair(
        KeyId=meta["KeyId"], KeyPairSpec=pair_spec, EncryptionContext=context
    )
    assert (out["KeyId"], out["KeyPairSpec"]) == (meta["Arn"], pair_spec)
    private = serialization.load_der_private_key(out["PrivateKeyPlaintext"], password=None)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    assert private.public_key().public_bytes(serialization.Encoding.DER, spki) == out["PublicKey"]
    back = kms.decrypt(CiphertextBlob=out["PrivateKeyCiphertextBlob"], EncryptionContext=context)
    assert back["Plaintext"] == out["PrivateKeyPlaintext"]
    bare = kms.generate_data_key_pair_without_plaintext(KeyId=meta["KeyId"], KeyPairSpec=pair_spec)
    assert "PrivateKeyPlaintext" not in bare
    private = serialization.load_der_private_key(
        kms.decrypt(CiphertextBlob=bare["PrivateKeyCiphertextBlob"])["Plaintext"], password=None
    )
    assert private.public_key().public_bytes(serialization.Encoding.DER, spki) == bare["PublicKey"]


def test_data_key_pairs_need_a_symmetric_key(kms: Any, key_of: Any) -> None:
    ecc = key_of("ECC_NIST_P256", "SIGN_VERIFY")
    failure = aws_error(kms.generate_data_key_pair, KeyId=ecc["KeyId"], KeyPairSpec="RSA_2048")
    assert (failure.code, failure.status) == ("InvalidKeyUsageException", 400)
    meta = key_of("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
    failure = aws_error(
        kms.generate_data_key_pair, KeyId=meta["KeyId"], KeyPairSpec="RSA_2048", DryRun=True
    )
    assert (failure.code, failure.status) == ("DryRunOperationException", 400)


# -- import ----------------------------------------------------------------------------------


def _wrap(public_der: bytes, algorithm: str, material: bytes) -> bytes:
    """Wrap ``material`` as AWS documents it for ``algorithm`` (what the AWS CLI recipe does)."""
    public = serialization.load_der_public_key(public_der)
    assert isinstance(public, rsa.RSAPublicKey)
    chosen = hashes.SHA1() if algorithm.endswith("SHA_1") else hashes.SHA256()
    oaep = padding.OAEP(mgf=padding.MGF1(chosen), algorithm=chosen, label=None)
    if algorithm.startswith("RSAES_OAEP"):
        return public.encrypt(material, oaep)
    aes_key = os.urandom(32)
    return public.encrypt(aes_key, oaep) + aes_key_wrap_with_padding(aes_key, material)


def _import(kms: Any, key_id: str, material: bytes, algorithm: str, **params: Any) -> Any:
    parameters = kms.get_parameters_for_import(
        KeyId=key_id, WrappingAlgorithm=algorithm, WrappingKeySpec="RSA_2048"
    )
    assert parameters["KeyId"].endswith(key_id)
    assert parameters["ParametersValidTo"].timestamp() > time.time() + 23 * 3600
    return kms.import_key_material(
        KeyId=key_id,
        ImportToken=parameters["ImportToken"],
        EncryptedKeyMaterial=_wrap(parameters["PublicKey"], algorithm, material),
        **params,
    )


def test_import_symmetric_material(kms: Any) -> None:
    meta = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]
    assert (meta["Origin"], meta["KeyState"]) == ("EXTERNAL", "PendingImport")
    failure = aws_error(kms.encrypt, KeyId=meta["KeyId"], Plaintext=b"x")
    assert (failure.code, failure.status) == ("KMSInvalidStateException", 400)
    material = os.urandom(32)
    out = _import(
        kms,
        meta["KeyId"],
        material,
        "RSAES_OAEP_SHA_256",
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
    )
    assert out["KeyId"] == meta["Arn"]
    described = kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]
    assert (described["KeyState"], described["ExpirationModel"]) == (
        "Enabled",
        "KEY_MATERIAL_DOES_NOT_EXPIRE",
    )
    blob = kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"imported")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"imported"
    failure = aws_error(
        _import,
        kms=kms,
        key_id=meta["KeyId"],
        material=os.urandom(32),
        algorithm="RSAES_OAEP_SHA_256",
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
    )
    assert (failure.code, failure.status) == ("IncorrectKeyMaterialException", 400)
    kms.delete_imported_key_material(KeyId=meta["KeyId"])
    assert kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]["KeyState"] == "PendingImport"
    assert aws_error(kms.decrypt, CiphertextBlob=blob).code == "KMSInvalidStateException"
    _import(
        kms,
        meta["KeyId"],
        material,
        "RSA_AES_KEY_WRAP_SHA_256",
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
    )
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"imported"


def test_import_refusals(kms: Any, key_of: Any) -> None:
    native = key_of("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
    failure = aws_error(
        kms.get_parameters_for_import,
        KeyId=native["KeyId"],
        WrappingAlgorithm="RSAES_OAEP_SHA_256",
        WrappingKeySpec="RSA_2048",
    )
    assert (failure.code, failure.status) == ("UnsupportedOperationException", 400)
    meta = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]
    other = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]
    parameters = kms.get_parameters_for_import(
        KeyId=other["KeyId"], WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048"
    )
    failure = aws_error(
        kms.import_key_material,
        KeyId=meta["KeyId"],
        ImportToken=parameters["ImportToken"],
        EncryptedKeyMaterial=_wrap(parameters["PublicKey"], "RSAES_OAEP_SHA_256", os.urandom(32)),
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
    )
    assert (failure.code, failure.status) == ("InvalidImportTokenException", 400)
    failure = aws_error(
        kms.import_key_material,
        KeyId=other["KeyId"],
        ImportToken=b"not a token",
        EncryptedKeyMaterial=b"\x00" * 256,
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
    )
    assert (failure.code, failure.status) == ("InvalidImportTokenException", 400)
    failure = aws_error(
        kms.import_key_material,
        KeyId=other["KeyId"],
        ImportToken=parameters["ImportToken"],
        EncryptedKeyMaterial=b"\x01" * 256,
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
    )
    assert (failure.code, failure.status) == ("InvalidCiphertextException", 400)


def test_imported_hmac_material_matches_a_local_hmac(kms: Any) -> None:
    meta = kms.create_key(Origin="EXTERNAL", KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")[
        "KeyMetadata"
    ]
    material = os.urandom(32)
    _import(
        kms,
        meta["KeyId"],
        material,
        "RSAES_OAEP_SHA_1",
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
    )
    local = hmac.HMAC(material, hashes.SHA256())
    local.update(b"known answer")
    out = kms.generate_mac(
        KeyId=meta["KeyId"], Message=b"known answer", MacAlgorithm="HMAC_SHA_256"
    )
    assert out["Mac"] == local.finalize()


def test_imported_ecc_key_signs_for_its_local_public_key(kms: Any) -> None:
    meta = kms.create_key(Origin="EXTERNAL", KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")[
        "KeyMetadata"
    ]
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _import(
        kms,
        meta["KeyId"],
        der,
        "RSA_AES_KEY_WRAP_SHA_256",
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
    )
    spki = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert kms.get_public_key(KeyId=meta["KeyId"])["PublicKey"] == spki
    signed = kms.sign(KeyId=meta["KeyId"], Message=b"m", SigningAlgorithm="ECDSA_SHA_256")
    private.public_key().verify(signed["Signature"], b"m", ec.ECDSA(hashes.SHA256()))
    local = private.sign(b"local", ec.ECDSA(hashes.SHA256()))
    checked = kms.verify(
        KeyId=meta["KeyId"], Message=b"local", Signature=local, SigningAlgorithm="ECDSA_SHA_256"
    )
    assert checked["SignatureValid"] is True


def test_every_operation_of_this_module_succeeded(
    whole_module: None, server: RunningServer
) -> None:
    # Last in the module: the server's own metrics say which operations answered 200.
    served = {
        op
        for (op, status), count in request_counts(server.endpoint).items()
        if status == "200" and count > 0
    }
    expected = {
        "Sign",
        "Verify",
        "GetPublicKey",
        "GenerateMac",
        "VerifyMac",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
        "GetParametersForImport",
        "ImportKeyMaterial",
        "DeleteImportedKeyMaterial",
    }
    assert sorted(expected - served) == []


def test_imported_key_rotates_to_new_material(kms: Any) -> None:
    """AWS's rotation of imported keys: NEW_KEY_MATERIAL, then RotateKeyOnDemand."""
    key_id = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    forever = {"ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}
    first, second = os.urandom(32), os.urandom(32)
    id1 = _import(kms, key_id, first, "RSAES_OAEP_SHA_256", **forever)["KeyMaterialId"]
    old = kms.encrypt(KeyId=key_id, Plaintext=b"old")["CiphertextBlob"]
    id2 = _import(
        kms,
        key_id,
        second,
        "RSA_AES_KEY_WRAP_SHA_256",
        ImportType="NEW_KEY_MATERIAL",
        KeyMaterialDescription="second material",
        **forever,
    )["KeyMaterialId"]
    listed = kms.list_key_rotations(KeyId=key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL")
    assert [(r["KeyMaterialId"], r["KeyMaterialState"]) for r in listed["Rotations"]] == [
        (id1, "CURRENT"),
        (id2, "PENDING_ROTATION"),
    ]
    failure = aws_error(
        _import,
        kms=kms,
        key_id=key_id,
        material=os.urandom(32),
        algorithm="RSAES_OAEP_SHA_256",
        ImportType="NEW_KEY_MATERIAL",
        **forever,
    )
    assert (failure.code, failure.status) == ("KMSInvalidStateException", 400)
    kms.rotate_key_on_demand(KeyId=key_id)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["CurrentKeyMaterialId"] == id2
    new = kms.encrypt(KeyId=key_id, Plaintext=b"new")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=new)["KeyMaterialId"] == id2
    assert kms.decrypt(CiphertextBlob=old)["KeyMaterialId"] == id1
    (rotation,) = kms.list_key_rotations(KeyId=key_id)["Rotations"]
    assert (rotation["KeyMaterialId"], rotation["RotationType"], rotation["ImportState"]) == (
        id2,
        "ON_DEMAND",
        "IMPORTED",
    )
    assert rotation["KeyMaterialDescription"] == "second material"
    kms.delete_imported_key_material(KeyId=key_id, KeyMaterialId=id1)
    assert aws_error(kms.decrypt, CiphertextBlob=new).code == "KMSInvalidStateException"
    _import(kms, key_id, first, "RSAES_OAEP_SHA_1", KeyMaterialId=id1, **forever)
    assert kms.decrypt(CiphertextBlob=old)["Plaintext"] == b"old"
    failure = aws_error(kms.rotate_key_on_demand, KeyId=key_id)
    assert (failure.code, failure.status) == ("KMSInvalidStateException", 400)


def test_derive_shared_secret_agrees_with_local_ecdh(kms: Any) -> None:
    meta = kms.create_key(KeySpec="ECC_NIST_P384", KeyUsage="KEY_AGREEMENT")["KeyMetadata"]
    assert meta["KeyAgreementAlgorithms"] == ["ECDH"]
    published = kms.get_public_key(KeyId=meta["KeyId"])
    assert published["KeyAgreementAlgorithms"] == ["ECDH"]
    service_public = serialization.load_der_public_key(published["PublicKey"])
    assert isinstance(service_public, ec.EllipticCurvePublicKey)
    local = ec.generate_private_key(ec.SECP384R1())
    reply = kms.derive_shared_secret(
        KeyId=meta["KeyId"],
        KeyAgreementAlgorithm="ECDH",
        PublicKey=local.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )
    assert reply["SharedSecret"] == local.exchange(ec.ECDH(), service_public)
    assert (reply["KeyAgreementAlgorithm"], reply["KeyOrigin"]) == ("ECDH", "AWS_KMS")
    failure = aws_error(
        kms.derive_shared_secret,
        KeyId=meta["KeyId"],
        KeyAgreementAlgorithm="ECDH",
        PublicKey=b"\x30" * 40,
    )
    assert (failure.code, failure.status) == ("ValidationException", 400)
    signing = kms.create_key(KeySpec="ECC_NIST_P384", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    failure = aws_error(
        kms.derive_shared_secret,
        KeyId=signing["KeyId"],
        KeyAgreementAlgorithm="ECDH",
        PublicKey=reply["SharedSecret"],
    )
    assert (failure.code, failure.status) == ("InvalidKeyUsageException", 400)


def test_ml_dsa_signatures_verify_offline(kms: Any) -> None:
    meta = kms.create_key(KeySpec="ML_DSA_65", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    assert meta["SigningAlgorithms"] == ["ML_DSA_SHAKE_256"]
    public = serialization.load_der_public_key(kms.get_public_key(KeyId=meta["KeyId"])["PublicKey"])
    assert isinstance(public, mldsa.MLDSA65PublicKey)
    signature = kms.sign(
        KeyId=meta["KeyId"], Message=b"post-quantum", SigningAlgorithm="ML_DSA_SHAKE_256"
    )["Signature"]
    public.verify(signature, b"post-quantum")
    hasher = mldsa.MLDSAMuHasher(public)
    hasher.update(b"a message that never travels" * 1000)
    mu = hasher.finalize()
    over_mu = kms.sign(
        KeyId=meta["KeyId"],
        Message=mu,
        MessageType="EXTERNAL_MU",
        SigningAlgorithm="ML_DSA_SHAKE_256",
    )["Signature"]
    public.verify(over_mu, b"a message that never travels" * 1000)
    assert kms.verify(
        KeyId=meta["KeyId"],
        Message=b"post-quantum",
        Signature=signature,
        SigningAlgorithm="ML_DSA_SHAKE_256",
    )["SignatureValid"]
    failure = aws_error(
        kms.sign,
        KeyId=meta["KeyId"],
        Message=bytes(64),
        MessageType="DIGEST",
        SigningAlgorithm="ML_DSA_SHAKE_256",
    )
    assert (failure.code, failure.status) == ("ValidationException", 400)


def test_ed25519_signatures_verify_offline(kms: Any) -> None:
    meta = kms.create_key(KeySpec="ECC_NIST_EDWARDS25519", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    public = serialization.load_der_public_key(kms.get_public_key(KeyId=meta["KeyId"])["PublicKey"])
    assert isinstance(public, ed25519.Ed25519PublicKey)
    signature = kms.sign(
        KeyId=meta["KeyId"], Message=b"edwards", SigningAlgorithm="ED25519_SHA_512"
    )["Signature"]
    public.verify(signature, b"edwards")
    failure = aws_error(
        kms.sign, KeyId=meta["KeyId"], Message=b"edwards", SigningAlgorithm="ED25519_PH_SHA_512"
    )
    assert (failure.code, failure.status) == ("UnsupportedOperationException", 400)
