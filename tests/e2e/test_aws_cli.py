"""The real AWS CLI (``aws``) against a Strongroom server over HTTPS with ``--endpoint-url``.

Only the environment and ``--endpoint-url`` differ from a call to AWS KMS: credentials in
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, the region in ``AWS_DEFAULT_REGION`` and
the server's CA in ``AWS_CA_BUNDLE``.
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
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import mldsa

from strongroom.testing.e2e_server import RunningServer
from strongroom.testing.http import AwsCredentials, client_environment

REGION = "eu-west-1"

pytestmark = pytest.mark.skipif(shutil.which("aws") is None, reason="the AWS CLI is not installed")


@pytest.fixture(scope="module")
def aws(
    server: RunningServer, tenant_a: AwsCredentials, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``aws <args> --endpoint-url <server>`` as tenant A; return the finished process."""
    home = tmp_path_factory.mktemp("aws-home")
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env = {
        **base,
        "HOME": str(home),
        **client_environment(server.endpoint, tenant_a, REGION, endpoint_variable=False),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["aws", *args, "--endpoint-url", server.endpoint.url, "--output", "json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return run


def ok(process: subprocess.CompletedProcess[str]) -> Any:
    assert process.returncode == 0, process.stderr
    return json.loads(process.stdout)


def test_create_key_encrypt_decrypt_round_trip(
    aws: Callable[..., subprocess.CompletedProcess[str]],
    tenant_a: AwsCredentials,
    tmp_path: Path,
) -> None:
    meta = ok(aws("kms", "create-key", "--description", "made by the AWS CLI"))["KeyMetadata"]
    assert meta["Arn"] == f"arn:aws:kms:{REGION}:{tenant_a.account_id}:key/{meta['KeyId']}"
    assert meta["Description"] == "made by the AWS CLI"
    plaintext = bytes(range(256)) + b"\x00 binary, not text \xff"
    (tmp_path / "plain.bin").write_bytes(plaintext)
    encrypted = ok(
        aws(
            "kms",
            "encrypt",
            "--key-id",
            meta["KeyId"],
            "--plaintext",
            f"fileb://{tmp_path / 'plain.bin'}",
            "--encryption-context",
            "purpose=cli,stage=test",
        )
    )
    assert encrypted["KeyId"] == meta["Arn"]
    blob = base64.b64decode(encrypted["CiphertextBlob"])
    (tmp_path / "blob.bin").write_bytes(blob)
    decrypted = ok(
        aws(
            "kms",
            "decrypt",
            "--ciphertext-blob",
            f"fileb://{tmp_path / 'blob.bin'}",
            "--encryption-context",
            "purpose=cli,stage=test",
        )
    )
    assert base64.b64decode(decrypted["Plaintext"]) == plaintext
    assert decrypted["KeyId"] == meta["Arn"]
    listed = ok(aws("kms", "list-keys"))["Keys"]
    assert {"KeyId": meta["KeyId"], "KeyArn": meta["Arn"]} in listed


def test_data_key_under_another_context_fails_with_the_aws_error(
    aws: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    meta = ok(aws("kms", "create-key"))["KeyMetadata"]
    encrypted = ok(
        aws(
            "kms",
            "generate-data-key",
            "--key-id",
            meta["Arn"],
            "--key-spec",
            "AES_256",
            "--encryption-context",
            "a=1",
        )
    )
    (tmp_path / "blob.bin").write_bytes(base64.b64decode(encrypted["CiphertextBlob"]))
    failed = aws(
        "kms",
        "decrypt",
        "--ciphertext-blob",
        f"fileb://{tmp_path / 'blob.bin'}",
        "--encryption-context",
        "a=2",
    )
    assert failed.returncode in (254, 255)
    assert "(InvalidCiphertextException)" in failed.stderr
    assert "Traceback" not in failed.stderr


def test_missing_key_exit_code_and_message(
    aws: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    failed = aws("kms", "describe-key", "--key-id", "alias/not-there")
    assert failed.returncode in (254, 255)
    assert "(NotFoundException)" in failed.stderr
    assert "alias/not-there is not found" in failed.stderr


def test_sts_get_caller_identity(
    aws: Callable[..., subprocess.CompletedProcess[str]], tenant_a: AwsCredentials
) -> None:
    # The CLI signs STS for the sts service; --endpoint-url sends it to us all the same.
    identity = ok(aws("sts", "get-caller-identity"))
    assert identity["Account"] == tenant_a.account_id
    assert identity["Arn"].startswith(f"arn:aws:iam::{tenant_a.account_id}:user/")


def test_ml_dsa_signature_and_key_last_usage(
    aws: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    meta = ok(aws("kms", "create-key", "--key-spec", "ML_DSA_44", "--key-usage", "SIGN_VERIFY"))[
        "KeyMetadata"
    ]
    (tmp_path / "message.bin").write_bytes(b"signed by the AWS CLI")
    signed = ok(
        aws(
            "kms",
            "sign",
            "--key-id",
            meta["KeyId"],
            "--message",
            f"fileb://{tmp_path / 'message.bin'}",
            "--message-type",
            "RAW",
            "--signing-algorithm",
            "ML_DSA_SHAKE_256",
        )
    )
    public_der = base64.b64decode(
        ok(aws("kms", "get-public-key", "--key-id", meta["KeyId"]))["PublicKey"]
    )
    public = serialization.load_der_public_key(public_der)
    assert isinstance(public, mldsa.MLDSA44PublicKey)
    public.verify(base64.b64decode(signed["Signature"]), b"signed by the AWS CLI")
    last = ok(aws("kms", "get-key-last-usage", "--key-id", meta["KeyId"]))
    assert last["KeyLastUsage"]["Operation"] == "Sign"
