"""The ``strongroom`` Clevis pin driven by Debian's clevis 19: ``clevis encrypt``/``decrypt``,
``clevis luks bind`` then ``clevis luks pass``, Shamir sharing with Tang through ``sss``;
Clevis's own ``jose`` as the oracle that the JWE is a standard one."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from strongroom.testing.luks import cryptsetup_missing, luks_image, run, volume_key
from strongroom.testing.tang import TangServer
from strongroom.volume.jwe import parse

pytestmark = pytest.mark.skipif(
    cryptsetup_missing() or shutil.which("clevis") is None or shutil.which("jose") is None,
    reason="clevis, jose or cryptsetup is not installed (scripts/test.sh installs them)",
)

if TYPE_CHECKING:
    from tests.volume.conftest import VolumeWorld


def test_clevis_encrypt_then_decrypt_through_the_pin(world: VolumeWorld, tmp_path: Path) -> None:
    env = world.env(world.a)
    secret = b"a secret \x00 with binary \xff bytes"
    config = json.dumps({"key": world.a.key_arn, "context": {"host": "node-1"}})
    jwe = run(["clevis", "encrypt", "strongroom", config], stdin=secret, env=env).stdout
    assert jwe.count(b".") == 4 and secret not in jwe
    parsed = parse(jwe.decode())
    assert parsed.pin.key == world.a.key_arn
    assert parsed.pin.context == {"host": "node-1", "strongroom:pin": "clevis"}
    assert parsed.pin.endpoint == world.server.endpoint.url
    assert parsed.pin.ca_bundle == str(world.server.endpoint.ca_bundle)
    assert run(["clevis", "decrypt"], stdin=jwe, env=env).stdout == secret
    # jose (Clevis's JOSE library) decrypts it too, given the data key: a standard JWE
    data_key = world.a.kms.decrypt(
        CiphertextBlob=parsed.pin.blob, EncryptionContext=parsed.pin.context
    )["Plaintext"]
    jwk = json.dumps({"kty": "oct", "k": base64.urlsafe_b64encode(data_key).rstrip(b"=").decode()})
    (tmp_path / "key.jwk").write_text(jwk)
    out = run(["jose", "jwe", "dec", "-i-", "-k", str(tmp_path / "key.jwk")], stdin=jwe)
    assert out.stdout == secret


def test_decrypt_needs_only_what_the_jwe_records(world: VolumeWorld, tmp_path: Path) -> None:
    """At boot nothing but credentials is configured: endpoint and CA come from the JWE."""
    env = world.env(world.a)
    jwe = run(
        ["clevis-encrypt-strongroom", json.dumps({"key": world.a.key_arn})], stdin=b"x", env=env
    ).stdout
    for name in ("AWS_ENDPOINT_URL_KMS", "AWS_CA_BUNDLE", "AWS_DEFAULT_REGION"):
        del env[name]
    assert run(["clevis", "decrypt"], stdin=jwe, env=env).stdout == b"x"


def test_a_changed_jwe_or_another_tenant_cannot_decrypt(world: VolumeWorld) -> None:
    env = world.env(world.a)
    jwe = run(
        ["clevis-encrypt-strongroom", json.dumps({"key": world.a.key_arn})], stdin=b"x", env=env
    ).stdout.decode()
    parts = jwe.split(".")
    header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    header["clevis"]["strongroom"]["context"]["strongroom:pin"] = "other"
    forged = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    for bad in (
        ".".join([forged, *parts[1:]]),
        ".".join([*parts[:3], parts[3][:-2] + ("AA" if parts[3][-2:] != "AA" else "BA"), parts[4]]),
        jwe.replace(".", "", 1),
    ):
        out = run(["clevis-decrypt-strongroom"], stdin=bad.encode(), env=env, expect=1)
        assert not out.stdout and out.stderr
    out = run(["clevis-decrypt-strongroom"], stdin=jwe.encode(), env=world.env(world.b), expect=1)
    assert not out.stdout and out.stderr


def test_bad_configurations_are_refused(world: VolumeWorld) -> None:
    env = world.env(world.a)
    for config, message in (
        ("not json", b"Configuration is malformed!"),
        ("{}", b"Missing the required 'key' property!"),
        ('{"key": "alias/x", "url": "http://x"}', b"Unknown configuration properties"),
        ('{"key": "alias/x", "context": {"strongroom:pin": "x"}}', b"reserved"),
        ('{"key": "alias/does-not-exist"}', b"alias/does-not-exist"),
    ):
        out = run(["clevis-encrypt-strongroom", config], stdin=b"x", env=env, expect=1)
        assert message in out.stderr and not out.stdout, config
    out = run(["clevis-encrypt-strongroom", "--summary"], env=env)
    assert b"Strongroom" in out.stdout


def test_clevis_luks_bind_then_pass(world: VolumeWorld, tmp_path: Path) -> None:
    env = world.env(world.a)
    image = luks_image(tmp_path / "c.img", b"existing")
    master = volume_key(image, b"existing")
    (tmp_path / "existing.key").write_bytes(b"existing")
    config = json.dumps({"key": world.a.key_arn})
    run(
        [
            "clevis",
            "luks",
            "bind",
            "-y",
            "-d",
            str(image),
            "-k",
            str(tmp_path / "existing.key"),
            "strongroom",
            config,
        ],
        env=env,
    )
    passphrase = run(["clevis", "luks", "pass", "-d", str(image), "-s", "1"], env=env).stdout
    assert passphrase and volume_key(image, passphrase) == master
    # the JWE in the clevis token is ours
    token = json.loads(run(["cryptsetup", "token", "export", "--token-id", "0", str(image)]).stdout)
    assert token["type"] == "clevis"
    header = json.loads(base64.urlsafe_b64decode(token["jwe"]["protected"] + "=="))
    assert header["clevis"]["pin"] == "strongroom"


def test_sss_with_tang_and_strongroom(world: VolumeWorld, tmp_path: Path) -> None:
    env = world.env(world.a)
    image = luks_image(tmp_path / "sss.img", b"existing")
    master = volume_key(image, b"existing")
    (tmp_path / "existing.key").write_bytes(b"existing")
    with TangServer(tmp_path) as tang:
        for threshold in (2, 1):
            config = json.dumps(
                {
                    "t": threshold,
                    "pins": {"tang": [{"url": tang.url}], "strongroom": [{"key": world.a.key_arn}]},
                }
            )
            run(
                [
                    "clevis",
                    "luks",
                    "bind",
                    "-y",
                    "-d",
                    str(image),
                    "-k",
                    str(tmp_path / "existing.key"),
                    "sss",
                    config,
                ],
                env=env,
            )
        both = run(["clevis", "luks", "pass", "-d", str(image), "-s", "1"], env=env).stdout
        assert volume_key(image, both) == master
        either = run(["clevis", "luks", "pass", "-d", str(image), "-s", "2"], env=env).stdout
        assert volume_key(image, either) == master
    # Tang is gone: the t=1 binding still opens through Strongroom, the t=2 one does not
    run(["clevis", "luks", "pass", "-d", str(image), "-s", "1"], env=env, expect=1)
    assert run(["clevis", "luks", "pass", "-d", str(image), "-s", "2"], env=env).stdout == either
