"""One contract suite over every root of trust: the local master key file and SoftHSM."""

from __future__ import annotations

import json
import os
import pickle
import stat
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pkcs11 import Attribute, KeyType, ObjectClass
from pkcs11.exceptions import AttributeSensitive, PKCS11Error

from strongroom.crypto.wrap import key_identity
from strongroom.errors import RootOfTrustError
from strongroom.ports import RootOfTrust
from strongroom.rootkey import LocalRootOfTrust, Pkcs11RootOfTrust, open_root_of_trust
from strongroom.testing.softhsm import TempSoftHSM

KINDS = ["local", "pkcs11"]
MATERIAL = bytes(range(32))
IDENTITY = key_identity("tenant-kek", "111122223333", 1)


@dataclass
class Subject:
    """A root of trust under test and how to open it again."""

    kind: str
    root: RootOfTrust
    spec: str
    data_dir: Path
    secret: str  # what repr must never show (the PIN), empty for local

    def reopen(self) -> RootOfTrust:
        return open_root_of_trust(self.spec, self.data_dir)


@pytest.fixture(params=KINDS)
def subject(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Subject]:
    if request.param == "local":
        spec, secret = "local", ""
    else:
        token: TempSoftHSM = request.getfixturevalue("softhsm_token")
        spec, secret = token.uri(f"root-{uuid.uuid4().hex}"), token.pin
    root = open_root_of_trust(spec, tmp_path, create=True)
    yield Subject(request.param, root, spec, tmp_path, secret)
    root.close()


def test_description_names_the_kind(subject: Subject) -> None:
    assert subject.root.description == subject.kind


# named ids: a random value in a test id differs between pytest-xdist workers' collections
@pytest.mark.parametrize(
    "material",
    [MATERIAL, b"\x00" * 32, os.urandom(64), b"k", b""],
    ids=["counting", "zeros", "random-64", "one-byte", "empty"],
)
def test_wrap_unwrap_round_trip(subject: Subject, material: bytes) -> None:
    wrapped = subject.root.wrap(material, IDENTITY)
    if len(material) >= 16:
        assert material not in wrapped
    assert wrapped[0] == 1
    assert len(wrapped) == 1 + 12 + len(material) + 16
    assert subject.root.unwrap(wrapped, IDENTITY) == material


def test_wrapping_twice_gives_different_blobs(subject: Subject) -> None:
    first = subject.root.wrap(MATERIAL, IDENTITY)
    second = subject.root.wrap(MATERIAL, IDENTITY)
    assert first != second
    assert first[1:13] != second[1:13]  # fresh nonce each time


@pytest.mark.parametrize(
    "other",
    [
        key_identity("tenant-kek", "111122223333", 2),
        key_identity("tenant-kek", "444455556666", 1),
        key_identity("cmk", "111122223333", 1),
        b"",
        IDENTITY + b"\x00",
    ],
)
def test_unwrap_with_another_identity_fails(subject: Subject, other: bytes) -> None:
    wrapped = subject.root.wrap(MATERIAL, IDENTITY)
    with pytest.raises(RootOfTrustError) as info:
        subject.root.unwrap(wrapped, other)
    assert MATERIAL.hex() not in str(info.value)


def test_every_bit_flip_fails(subject: Subject) -> None:
    wrapped = subject.root.wrap(MATERIAL, IDENTITY)
    for index in range(len(wrapped)):
        for bit in range(8):
            flipped = bytearray(wrapped)
            flipped[index] ^= 1 << bit
            with pytest.raises(RootOfTrustError):
                subject.root.unwrap(bytes(flipped), IDENTITY)
    assert subject.root.unwrap(wrapped, IDENTITY) == MATERIAL  # still usable afterwards


@pytest.mark.parametrize(
    "mangle",
    [
        lambda w: w[:-1],
        lambda w: w[:29],
        lambda w: w[:13],
        lambda w: b"",
        lambda w: w + b"\x00",
        lambda w: b"\x02" + w[1:],
        lambda w: b"\x01" + os.urandom(len(w) - 1),
    ],
    ids=["drop-last", "minimum-length", "header-only", "empty", "extended", "version", "random"],
)
def test_malformed_blobs_fail(subject: Subject, mangle: object) -> None:
    wrapped = subject.root.wrap(MATERIAL, IDENTITY)
    assert callable(mangle)
    with pytest.raises(RootOfTrustError):
        subject.root.unwrap(mangle(wrapped), IDENTITY)


def test_key_persists_across_reopen(subject: Subject) -> None:
    wrapped = subject.root.wrap(MATERIAL, IDENTITY)
    again = subject.reopen()
    try:
        assert again.unwrap(wrapped, IDENTITY) == MATERIAL
        assert subject.root.unwrap(again.wrap(MATERIAL, IDENTITY), IDENTITY) == MATERIAL
    finally:
        again.close()
    # Closing one object leaves the other working (a shared HSM login is not ended).
    assert subject.root.unwrap(wrapped, IDENTITY) == MATERIAL


def test_key_persists_into_a_new_process(subject: Subject) -> None:
    wrapped = subject.root.wrap(MATERIAL, IDENTITY)
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from strongroom.rootkey import open_root_of_trust\n"
        "args = json.loads(sys.stdin.read())\n"
        "root = open_root_of_trust(args['spec'], Path(args['data_dir']))\n"
        "out = root.unwrap(bytes.fromhex(args['wrapped']), bytes.fromhex(args['identity']))\n"
        "root.close()\n"
        "sys.stdout.write(out.hex())\n"
    )
    request = {
        "spec": subject.spec,
        "data_dir": str(subject.data_dir),
        "wrapped": wrapped.hex(),
        "identity": IDENTITY.hex(),
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert bytes.fromhex(result.stdout) == MATERIAL


def test_eight_threads_wrap_and_unwrap_concurrently(subject: Subject) -> None:
    rounds = 40
    barrier = threading.Barrier(8)
    results: dict[int, list[tuple[bytes, bytes, bytes]]] = {}
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            identity = key_identity("thread", worker)
            barrier.wait(timeout=30)
            done = []
            for _ in range(rounds):
                material = os.urandom(32)
                wrapped = subject.root.wrap(material, identity)
                done.append((material, wrapped, subject.root.unwrap(wrapped, identity)))
            results[worker] = done
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert sorted(results) == list(range(8))
    nonces = set()
    for worker, done in results.items():
        for material, wrapped, unwrapped in done:
            assert unwrapped == material
            assert subject.root.unwrap(wrapped, key_identity("thread", worker)) == material
            nonces.add(wrapped[1:13])
    assert len(nonces) == 8 * rounds


def test_repr_and_pickle_reveal_nothing(subject: Subject) -> None:
    text = repr(subject.root) + str(subject.root)
    if subject.secret:
        assert subject.secret not in text
        assert "pin" not in text.lower()
    with pytest.raises(TypeError):
        pickle.dumps(subject.root)


def test_local_master_key_file_is_created_0600(tmp_path: Path) -> None:
    root = open_root_of_trust("local", tmp_path, create=True)
    path = tmp_path / "master.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_bytes()) == 32
    wrapped = root.wrap(MATERIAL, IDENTITY)
    # create=True on an existing file uses it, never replaces it.
    again = open_root_of_trust("local", tmp_path, create=True)
    assert again.unwrap(wrapped, IDENTITY) == MATERIAL


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_local_master_key_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    open_root_of_trust("local", tmp_path, create=True)
    (tmp_path / "master.key").chmod(mode)
    with pytest.raises(RootOfTrustError, match="0600"):
        open_root_of_trust("local", tmp_path)
    with pytest.raises(RootOfTrustError):
        LocalRootOfTrust.load(tmp_path / "master.key")


def test_local_without_create_needs_the_file(tmp_path: Path) -> None:
    with pytest.raises(RootOfTrustError):
        open_root_of_trust("local", tmp_path)
    assert not (tmp_path / "master.key").exists()


def test_hsm_key_is_token_resident_sensitive_and_never_extractable(
    softhsm_token: TempSoftHSM, tmp_path: Path
) -> None:
    label = f"root-{uuid.uuid4().hex}"
    root = open_root_of_trust(softhsm_token.uri(label), tmp_path, create=True)
    try:
        with softhsm_token.session() as session:
            key = session.get_key(object_class=ObjectClass.SECRET_KEY, label=label)
            attrs = key.get_attributes(
                [
                    Attribute.KEY_TYPE,
                    Attribute.VALUE_LEN,
                    Attribute.TOKEN,
                    Attribute.PRIVATE,
                    Attribute.SENSITIVE,
                    Attribute.ALWAYS_SENSITIVE,
                    Attribute.EXTRACTABLE,
                    Attribute.NEVER_EXTRACTABLE,
                    Attribute.MODIFIABLE,
                    Attribute.WRAP,
                    Attribute.LOCAL,
                ]
            )
            assert attrs[Attribute.KEY_TYPE] == KeyType.AES
            assert attrs[Attribute.VALUE_LEN] == 32
            assert attrs[Attribute.TOKEN] is True
            assert attrs[Attribute.PRIVATE] is True
            assert attrs[Attribute.SENSITIVE] is True
            assert attrs[Attribute.ALWAYS_SENSITIVE] is True
            assert attrs[Attribute.EXTRACTABLE] is False
            assert attrs[Attribute.NEVER_EXTRACTABLE] is True
            assert attrs[Attribute.MODIFIABLE] is False
            assert attrs[Attribute.WRAP] is False
            assert attrs[Attribute.LOCAL] is True  # generated inside the token
            with pytest.raises(AttributeSensitive):
                key[Attribute.VALUE]
            # Nor can another key carry it out of the HSM.
            carrier = session.generate_key(KeyType.AES, 256, store=False)
            with pytest.raises(PKCS11Error):
                carrier.wrap_key(key)
    finally:
        root.close()


def test_reopening_a_pkcs11_key_finds_the_same_one_and_makes_no_second(
    softhsm_token: TempSoftHSM, tmp_path: Path
) -> None:
    label = f"root-{uuid.uuid4().hex}"
    first = open_root_of_trust(softhsm_token.uri(label), tmp_path, create=True)
    second = open_root_of_trust(softhsm_token.uri(label), tmp_path, create=True)
    try:
        assert second.unwrap(first.wrap(MATERIAL, IDENTITY), IDENTITY) == MATERIAL
        with softhsm_token.session() as session:
            found = list(session.get_objects({Attribute.LABEL: label}))
        assert len(found) == 1
    finally:
        first.close()
        second.close()


def test_pkcs11_root_is_unusable_after_close(softhsm_token: TempSoftHSM, tmp_path: Path) -> None:
    root = Pkcs11RootOfTrust.from_uri(softhsm_token.uri(f"root-{uuid.uuid4().hex}"), create=True)
    wrapped = root.wrap(MATERIAL, IDENTITY)
    root.close()
    root.close()  # idempotent
    with pytest.raises(RootOfTrustError, match="closed"):
        root.unwrap(wrapped, IDENTITY)
    with pytest.raises(RootOfTrustError, match="closed"):
        root.wrap(MATERIAL, IDENTITY)
