"""Errors a new user meets say what happened and what to do (issue 18, points 4 and 5).

The console script runs against a ``strongroom server`` of this module, with the AWS
variables ``strongroom env`` would set.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from strongroom.testing.server import ServerInfo, client_for, console_script
from strongroom.testing.server import aws_env as server_env
from strongroom.testing.softhsm import find_softhsm_module


@pytest.fixture(scope="module")
def env(kms_server: ServerInfo, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    environ = server_env(
        kms_server.credentials,
        tmp_path_factory.mktemp("aws"),
        AWS_DEFAULT_REGION=kms_server.credentials["Region"],
        AWS_CA_BUNDLE=str(kms_server.ca_bundle),
        AWS_ENDPOINT_URL_KMS=kms_server.endpoint_url,
        COLUMNS="200",
    )
    environ.pop("STRONGROOM_DATA_DIR", None)
    return environ


def run(env: dict[str, str], cwd: Path, *args: str, expect: int = 1) -> str:
    done = subprocess.run(
        [console_script(), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )
    assert done.returncode == expect, (args, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    return " ".join(done.stderr.split())


@pytest.fixture(scope="module")
def sealed(kms_key_arn: str, env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sealed")
    (folder / "plain.txt").write_bytes(b"hello\n")
    run(env, folder, "encrypt", "-k", kms_key_arn, "plain.txt", "plain.sr", expect=0)
    return folder / "plain.sr"


def test_decrypt_of_nothing_is_not_a_stream(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    err = run(env, tmp_path, "decrypt", "empty", "out")
    assert "error: The input is empty: it is not a Strongroom encrypted stream." in err
    assert not (tmp_path / "out").exists()


def test_decrypt_of_a_pdf_is_not_a_stream(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "doc.pdf").write_bytes(b"%PDF-1.7\n" + os.urandom(500))
    err = run(env, tmp_path, "decrypt", "doc.pdf", "out")
    assert "The input is not a Strongroom encrypted stream." in err
    assert "not made by 'strongroom encrypt'" in err


def test_decrypt_of_a_kms_blob_says_use_kms_decrypt(
    kms_server: ServerInfo, kms_key_arn: str, env: dict[str, str], tmp_path: Path
) -> None:
    blob = client_for(kms_server).encrypt(KeyId=kms_key_arn, Plaintext=b"x")["CiphertextBlob"]
    (tmp_path / "blob.bin").write_bytes(blob)
    err = run(env, tmp_path, "decrypt", "blob.bin", "out")
    assert "It looks like a KMS ciphertext blob" in err and "'aws kms decrypt'" in err


def test_decrypt_of_a_tampered_stream_says_so(
    sealed: Path, env: dict[str, str], tmp_path: Path
) -> None:
    data = bytearray(sealed.read_bytes())
    data[-20] ^= 1
    (tmp_path / "bad.sr").write_bytes(bytes(data))
    err = run(env, tmp_path, "decrypt", "bad.sr", "out")
    assert "error: The encrypted stream does not authenticate: it was altered" in err
    assert "not a Strongroom encrypted stream" not in err


def test_a_newer_stream_version_says_so(sealed: Path, env: dict[str, str], tmp_path: Path) -> None:
    data = bytearray(sealed.read_bytes())
    data[4] = 9
    (tmp_path / "v9.sr").write_bytes(bytes(data))
    err = run(env, tmp_path, "decrypt", "v9.sr", "out")
    assert "a Strongroom encrypted stream of a format (version 9)" in err


def test_a_missing_ca_bundle_is_named(
    kms_key_arn: str, env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "a.txt").write_bytes(b"a")
    missing = tmp_path / "gone" / "ca.pem"
    err = run(
        dict(env, AWS_CA_BUNDLE=str(missing)), tmp_path, "encrypt", "-k", kms_key_arn, "a.txt", "-"
    )
    assert f"The CA bundle {missing} (from AWS_CA_BUNDLE) does not exist." in err
    err = run(
        env,
        tmp_path,
        "encrypt",
        "-k",
        kms_key_arn,
        "--ca-bundle",
        "nope.pem",
        "a.txt",
        "-",
        "--endpoint",
        env["AWS_ENDPOINT_URL_KMS"],
    )
    assert "The CA bundle nope.pem (from --ca-bundle) does not exist." in err


def test_shredded_users_object_and_recreating_their_key(
    kms_key_arn: str, env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "cv.pdf").write_bytes(b"%PDF cv")
    put = ("objects", "put", "--dir", "objects", "-k", kms_key_arn, "--user", "u-42")
    err = run(env, tmp_path, *put, "u-42/cv.pdf", "cv.pdf")
    assert "End user 'u-42' has no user key under" in err and "--create-user-key" in err
    run(env, tmp_path, *put, "--create-user-key", "u-42/cv.pdf", "cv.pdf", expect=0)
    run(env, tmp_path, "user-keys", "destroy", "--key", kms_key_arn, "--user", "u-42", expect=0)
    err = run(env, tmp_path, "objects", "get", "--dir", "objects", "u-42/cv.pdf", "-")
    assert "encrypted for end user 'u-42'" in err and "destroyed" in err
    assert "Add --user u-42" in err
    err = run(env, tmp_path, "objects", "get", "--dir", "objects", "--user", "u-42", "u-42/cv.pdf")
    assert "destroyed" in err
    # the destroyed key is not quietly made again
    err = run(env, tmp_path, *put, "u-42/cv2.pdf", "cv.pdf")
    assert "it was destroyed (crypto-shredding" in err
    assert not (tmp_path / "objects" / "u-42" / "cv2.pdf").exists()


def test_a_missing_objects_dir_is_named(env: dict[str, str], tmp_path: Path) -> None:
    for args in (("ls",), ("get", "a.pdf", "-"), ("rm", "a.pdf")):
        err = run(env, tmp_path, "objects", *args, "--dir", "nowhere")
        assert "--dir nowhere: no such directory." in err, args


def test_admin_command_elsewhere_points_at_the_data_dir(
    env: dict[str, str], tmp_path: Path
) -> None:
    err = run(env, tmp_path, "admin", "tenant", "list")
    assert f"{tmp_path / '.strongroom'} is not a Strongroom data directory" in err
    assert "run this where the server was started, or give --data-dir DIR" in err
    assert "Only for a new, empty one: strongroom init" in err


def test_softhsm_without_its_configuration(env: dict[str, str], tmp_path: Path) -> None:
    try:
        module = find_softhsm_module()
    except Exception:
        pytest.skip("SoftHSM 2 is not installed")
    uri = f"pkcs11:token=prod;object=root?module-path={module}&pin-value=1234"
    quiet = {k: v for k, v in env.items() if k != "SOFTHSM2_CONF"}
    err = run(quiet, tmp_path, "init", "--data-dir", "d", "--root-of-trust", uri)
    assert "no initialised PKCS#11 token matches the URI (token=prod)" in err
    assert "SOFTHSM2_CONF is not set" in err
    err = run(
        dict(quiet, SOFTHSM2_CONF=str(tmp_path / "no.conf")),
        tmp_path,
        "init",
        "--data-dir",
        "d",
        "--root-of-trust",
        uri,
    )
    assert "SOFTHSM2_CONF names" in err and "no file" in err
