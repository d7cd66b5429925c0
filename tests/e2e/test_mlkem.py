"""ML-KEM over HTTPS: boto3 and the AWS CLI against a Strongroom server process.

Shared secrets are checked with ``cryptography``'s own ML-KEM on the client side: a secret
encapsulated offline to the DER public key GetPublicKey returns must come back from
Decapsulate, and a secret Encapsulate makes for an imported key must be recovered offline
with the imported private key.

An AWS CLI whose bundled model predates ML-KEM learns the operations as AWS documents for
any new operation: ``aws configure add-model`` with the service model Strongroom ships
(``strongroom/kms/kms-2014-11-01.json``), into the CLI's own ``~/.aws/models``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import mlkem, padding, rsa
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

import strongroom.kms
from strongroom.testing.e2e_server import RunningServer
from strongroom.testing.http import AwsCredentials, aws_error, client_environment

REGION = "eu-west-1"
MODEL = Path(strongroom.kms.__file__).parent / "kms-2014-11-01.json"


def spki(public: Any) -> bytes:
    der: bytes = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return der


@pytest.mark.parametrize(
    ("spec", "public_class", "size"),
    [
        ("ML_KEM_768", mlkem.MLKEM768PublicKey, 1088),
        ("ML_KEM_1024", mlkem.MLKEM1024PublicKey, 1568),
    ],
)
def test_boto3_secrets_agree_with_local_ml_kem(
    kms: Any, spec: str, public_class: type, size: int
) -> None:
    meta = kms.create_key(KeySpec=spec, KeyUsage="ENCAPSULATE_DECAPSULATE")["KeyMetadata"]
    assert meta["EncapsulationAlgorithms"] == ["ML_KEM"]
    published = kms.get_public_key(KeyId=meta["KeyId"])
    assert published["EncapsulationAlgorithms"] == ["ML_KEM"]
    public = serialization.load_der_public_key(published["PublicKey"])
    assert isinstance(public, public_class)
    assert isinstance(public, mlkem.MLKEM768PublicKey | mlkem.MLKEM1024PublicKey)

    secret, ciphertext = public.encapsulate()
    reply = kms.decapsulate(
        KeyId=meta["KeyId"], SharedSecretCiphertextBlob=ciphertext, EncapsulationAlgorithm="ML_KEM"
    )
    assert (reply["SharedSecret"], reply["KeyId"]) == (secret, meta["Arn"])
    assert reply["EncapsulationAlgorithm"] == "ML_KEM"

    made = kms.encapsulate(KeyId=meta["KeyId"], EncapsulationAlgorithm="ML_KEM")
    assert len(made["SharedSecret"]) == 32
    assert len(made["SharedSecretCiphertextBlob"]) == size
    again = kms.decapsulate(
        KeyId=meta["Arn"],
        SharedSecretCiphertextBlob=made["SharedSecretCiphertextBlob"],
        EncapsulationAlgorithm="ML_KEM",
    )
    assert again["SharedSecret"] == made["SharedSecret"]

    failure = aws_error(
        kms.decapsulate,
        KeyId=meta["KeyId"],
        SharedSecretCiphertextBlob=ciphertext[:-1],
        EncapsulationAlgorithm="ML_KEM",
    )
    assert (failure.code, failure.status) == ("InvalidCiphertextException", 400)
    failure = aws_error(kms.encrypt, KeyId=meta["KeyId"], Plaintext=b"x")
    assert (failure.code, failure.status) == ("InvalidKeyUsageException", 400)


def test_boto3_ml_kem_512_is_refused(kms: Any) -> None:
    failure = aws_error(kms.create_key, KeySpec="ML_KEM_512", KeyUsage="ENCAPSULATE_DECAPSULATE")
    assert (failure.code, failure.status) == ("UnsupportedOperationException", 400)
    assert "ML_KEM_512" in failure.message and "ML_KEM_768" in failure.message


def _wrap(public_der: bytes, material: bytes) -> bytes:
    """RSA_AES_KEY_WRAP_SHA_256, as AWS documents it."""
    public = serialization.load_der_public_key(public_der)
    assert isinstance(public, rsa.RSAPublicKey)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    aes_key = os.urandom(32)
    return public.encrypt(aes_key, oaep) + aes_key_wrap_with_padding(aes_key, material)


def test_boto3_imported_key_decapsulates_offline(kms: Any) -> None:
    private = mlkem.MLKEM1024PrivateKey.generate()
    meta = kms.create_key(
        Origin="EXTERNAL", KeySpec="ML_KEM_1024", KeyUsage="ENCAPSULATE_DECAPSULATE"
    )["KeyMetadata"]
    parameters = kms.get_parameters_for_import(
        KeyId=meta["KeyId"],
        WrappingAlgorithm="RSA_AES_KEY_WRAP_SHA_256",
        WrappingKeySpec="RSA_3072",
    )
    material = private.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    kms.import_key_material(
        KeyId=meta["KeyId"],
        ImportToken=parameters["ImportToken"],
        EncryptedKeyMaterial=_wrap(parameters["PublicKey"], material),
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
    )
    assert kms.get_public_key(KeyId=meta["KeyId"])["PublicKey"] == spki(private.public_key())
    made = kms.encapsulate(KeyId=meta["KeyId"], EncapsulationAlgorithm="ML_KEM")
    assert private.decapsulate(made["SharedSecretCiphertextBlob"]) == made["SharedSecret"]


# -- the AWS CLI -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def aws(
    server: RunningServer, tenant_a: AwsCredentials, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``aws <args> --endpoint-url <server>`` as tenant A, with a CLI that knows ML-KEM."""
    if shutil.which("aws") is None:
        pytest.skip("the AWS CLI is not installed")
    home = tmp_path_factory.mktemp("aws-home")
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env = {
        **base,
        "HOME": str(home),
        **client_environment(server.endpoint, tenant_a, REGION, endpoint_variable=False),
    }

    def run(*args: str, endpoint: bool = True) -> subprocess.CompletedProcess[str]:
        extra = ["--endpoint-url", server.endpoint.url, "--output", "json"] if endpoint else []
        return subprocess.run(
            ["aws", *args, *extra],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    if run("kms", "encapsulate", "help", endpoint=False).returncode != 0:
        added = run(
            "configure",
            "add-model",
            "--service-name",
            "kms",
            "--service-model",
            f"file://{MODEL}",
            endpoint=False,
        )
        assert added.returncode == 0, added.stderr
    return run


def ok(process: subprocess.CompletedProcess[str]) -> Any:
    assert process.returncode == 0, process.stderr
    return json.loads(process.stdout)


def test_aws_cli_encapsulate_and_decapsulate(
    aws: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    meta = ok(
        aws(
            "kms",
            "create-key",
            "--key-spec",
            "ML_KEM_768",
            "--key-usage",
            "ENCAPSULATE_DECAPSULATE",
        )
    )["KeyMetadata"]
    assert meta["EncapsulationAlgorithms"] == ["ML_KEM"]
    public_der = base64.b64decode(
        ok(aws("kms", "get-public-key", "--key-id", meta["KeyId"]))["PublicKey"]
    )
    public = serialization.load_der_public_key(public_der)
    assert isinstance(public, mlkem.MLKEM768PublicKey)

    # Encapsulated offline, decapsulated by the server through the CLI.
    secret, ciphertext = public.encapsulate()
    (tmp_path / "ct.bin").write_bytes(ciphertext)
    reply = ok(
        aws(
            "kms",
            "decapsulate",
            "--key-id",
            meta["KeyId"],
            "--encapsulation-algorithm",
            "ML_KEM",
            "--shared-secret-ciphertext-blob",
            f"fileb://{tmp_path / 'ct.bin'}",
        )
    )
    assert base64.b64decode(reply["SharedSecret"]) == secret
    assert reply["KeyId"] == meta["Arn"]

    # Encapsulated by the server, decapsulated by it again from the CLI's own output.
    made = ok(
        aws(
            "kms",
            "encapsulate",
            "--key-id",
            meta["KeyId"],
            "--encapsulation-algorithm",
            "ML_KEM",
        )
    )
    (tmp_path / "made.bin").write_bytes(base64.b64decode(made["SharedSecretCiphertextBlob"]))
    back = ok(
        aws(
            "kms",
            "decapsulate",
            "--key-id",
            meta["Arn"],
            "--encapsulation-algorithm",
            "ML_KEM",
            "--shared-secret-ciphertext-blob",
            f"fileb://{tmp_path / 'made.bin'}",
        )
    )
    assert back["SharedSecret"] == made["SharedSecret"]

    (tmp_path / "short.bin").write_bytes(ciphertext[:100])
    failed = aws(
        "kms",
        "decapsulate",
        "--key-id",
        meta["KeyId"],
        "--encapsulation-algorithm",
        "ML_KEM",
        "--shared-secret-ciphertext-blob",
        f"fileb://{tmp_path / 'short.bin'}",
    )
    assert failed.returncode in (254, 255)
    assert "(InvalidCiphertextException)" in failed.stderr
    last = ok(aws("kms", "get-key-last-usage", "--key-id", meta["KeyId"]))
    assert last["KeyLastUsage"]["Operation"] == "Decapsulate"
