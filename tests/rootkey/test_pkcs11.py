"""The PKCS#11 root of trust beyond the contract: configuration, PINs, refused keys, SoftHSM."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from pkcs11 import Attribute, KeyType

from strongroom.crypto.wrap import key_identity
from strongroom.errors import RootOfTrustError, ValidationError
from strongroom.rootkey import PIN_ENV, Pkcs11RootOfTrust, Pkcs11Uri, open_root_of_trust
from strongroom.rootkey.pkcs11 import resolve_pin
from strongroom.rootkey.pkcs11_uri import parse_pkcs11_uri
from strongroom.testing.softhsm import CONF_ENV, TempSoftHSM

MATERIAL = bytes(range(32))
IDENTITY = key_identity("tenant-kek", "111122223333", 1)


def _label() -> str:
    return f"root-{uuid.uuid4().hex}"


def _uri_without_pin(token: TempSoftHSM, label: str, **extra: Any) -> Pkcs11Uri:
    return Pkcs11Uri(
        token=token.token_label, object=label, module_path=str(token.module_path), **extra
    )


def test_pin_from_a_file(softhsm_token: TempSoftHSM, tmp_path: Path) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text(softhsm_token.pin + "\n", encoding="utf-8")
    for source in (str(pin_file), f"file:{pin_file}", f"file://{pin_file}"):
        uri = _uri_without_pin(softhsm_token, _label(), pin_source=source)
        root = Pkcs11RootOfTrust.from_uri(uri.to_text(), create=True, environ={})
        try:
            assert root.unwrap(root.wrap(MATERIAL, IDENTITY), IDENTITY) == MATERIAL
        finally:
            root.close()


def test_pin_from_the_environment(softhsm_token: TempSoftHSM) -> None:
    uri = _uri_without_pin(softhsm_token, _label())
    root = Pkcs11RootOfTrust.from_uri(uri, create=True, environ={PIN_ENV: softhsm_token.pin})
    try:
        assert root.unwrap(root.wrap(MATERIAL, IDENTITY), IDENTITY) == MATERIAL
    finally:
        root.close()


def test_pin_precedence_value_then_source_then_environment(tmp_path: Path) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text("from-file\r\n", encoding="utf-8")
    environ = {PIN_ENV: "from-env"}
    assert resolve_pin(Pkcs11Uri(pin_value="inline"), environ) == "inline"
    assert resolve_pin(Pkcs11Uri(pin_source=str(pin_file)), environ) == "from-file"
    assert resolve_pin(Pkcs11Uri(), environ) == "from-env"


@pytest.mark.parametrize("content", [b"", b"\n", b"x" * 300, b"\xff\xfe"])
def test_bad_pin_files_are_refused(tmp_path: Path, content: bytes) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_bytes(content)
    with pytest.raises(ValidationError):
        resolve_pin(Pkcs11Uri(pin_source=str(pin_file)), {})


def test_a_missing_pin_file_is_a_root_of_trust_error(tmp_path: Path) -> None:
    with pytest.raises(RootOfTrustError, match="PIN file"):
        resolve_pin(Pkcs11Uri(pin_source=str(tmp_path / "absent")), {})


def test_no_pin_anywhere_is_refused(softhsm_token: TempSoftHSM) -> None:
    with pytest.raises(ValidationError, match=PIN_ENV):
        Pkcs11RootOfTrust.from_uri(_uri_without_pin(softhsm_token, "root"), environ={})


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"module_path": None}, "module"),
        ({"object": None}, "object"),
        ({"token": None}, "token"),
        ({"type": "cert"}, "secret-key"),
    ],
)
def test_incomplete_uris_are_refused(
    softhsm_token: TempSoftHSM, change: dict[str, object], fragment: str
) -> None:
    fields: dict[str, Any] = {
        "token": softhsm_token.token_label,
        "object": "root",
        "module_path": str(softhsm_token.module_path),
        "pin_value": softhsm_token.pin,
        "type": None,
    }
    fields.update(change)
    with pytest.raises(ValidationError, match=fragment):
        Pkcs11RootOfTrust.from_uri(Pkcs11Uri(**fields))


def test_unknown_token_module_or_key_is_a_root_of_trust_error(
    softhsm_token: TempSoftHSM, tmp_path: Path
) -> None:
    good = parse_pkcs11_uri(softhsm_token.uri("never-created"))
    cases = [
        Pkcs11Uri(token="no-such-token", object="k", module_path=good.module_path, pin_value="1"),
        Pkcs11Uri(token=good.token, object="k", module_path=str(tmp_path / "x.so"), pin_value="1"),
        good,
    ]
    for uri in cases:
        with pytest.raises(RootOfTrustError):
            Pkcs11RootOfTrust.from_uri(uri)
    with softhsm_token.session() as session:
        assert list(session.get_objects({Attribute.LABEL: "never-created"})) == []


def test_token_found_by_serial_and_slot_id(softhsm_token: TempSoftHSM) -> None:
    label = _label()
    first = Pkcs11RootOfTrust.from_uri(softhsm_token.uri(label), create=True)
    with softhsm_token.session() as session:
        serial = session.token.serial.decode("ascii").strip()
        slot_id = session.token.slot.slot_id
    by_serial = parse_pkcs11_uri(softhsm_token.uri(label))
    for uri in (
        Pkcs11Uri(
            serial=serial,
            object=label,
            module_path=by_serial.module_path,
            pin_value=softhsm_token.pin,
        ),
        Pkcs11Uri(
            slot_id=slot_id,
            object=label,
            module_path=by_serial.module_path,
            pin_value=softhsm_token.pin,
            type="secret-key",
        ),
    ):
        again = Pkcs11RootOfTrust.from_uri(uri)
        try:
            assert again.unwrap(first.wrap(MATERIAL, IDENTITY), IDENTITY) == MATERIAL
        finally:
            again.close()
    first.close()


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ({Attribute.EXTRACTABLE: True, Attribute.SENSITIVE: True}, "leave the HSM"),
        ({Attribute.EXTRACTABLE: False, Attribute.SENSITIVE: False}, "leave the HSM"),
    ],
)
def test_an_exportable_key_with_the_label_is_refused(
    softhsm_token: TempSoftHSM, template: dict[Attribute, bool], fragment: str
) -> None:
    label = _label()
    with softhsm_token.session() as session:
        session.generate_key(
            KeyType.AES,
            256,
            label=label,
            store=True,
            template={Attribute.TOKEN: True, Attribute.PRIVATE: True, **template},
        )
    with pytest.raises(RootOfTrustError, match=fragment):
        Pkcs11RootOfTrust.from_uri(softhsm_token.uri(label), create=True)


def test_a_short_aes_key_with_the_label_is_refused(softhsm_token: TempSoftHSM) -> None:
    label = _label()
    with softhsm_token.session() as session:
        session.generate_key(
            KeyType.AES,
            128,
            label=label,
            store=True,
            template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False},
        )
    with pytest.raises(RootOfTrustError, match="AES-256"):
        Pkcs11RootOfTrust.from_uri(softhsm_token.uri(label))


def test_two_keys_with_one_label_are_refused(softhsm_token: TempSoftHSM) -> None:
    label = _label()
    with softhsm_token.session() as session:
        for _ in range(2):
            session.generate_key(
                KeyType.AES,
                256,
                label=label,
                store=True,
                template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False},
            )
    with pytest.raises(RootOfTrustError):
        Pkcs11RootOfTrust.from_uri(softhsm_token.uri(label), create=True)


def test_material_up_to_64_kib_is_wrapped_and_more_is_refused(softhsm_token: TempSoftHSM) -> None:
    root = Pkcs11RootOfTrust.from_uri(softhsm_token.uri(_label()), create=True)
    try:
        largest = os.urandom(65536)
        assert root.unwrap(root.wrap(largest, IDENTITY), IDENTITY) == largest
        with pytest.raises(RootOfTrustError):
            root.wrap(b"\x00" * 65537, IDENTITY)
        with pytest.raises(RootOfTrustError):
            root.unwrap(b"\x01" + b"\x00" * (12 + 65537 + 16), IDENTITY)
    finally:
        root.close()


def test_wrong_pin_is_refused_and_not_echoed(tmp_path: Path) -> None:
    with TempSoftHSM(tmp_path / "hsm") as hsm:
        uri = parse_pkcs11_uri(hsm.uri("root"))
        wrong = Pkcs11Uri(
            token=uri.token,
            object="root",
            module_path=uri.module_path,
            pin_value="wrong-" + hsm.pin,
        )
        with pytest.raises(RootOfTrustError) as info:
            Pkcs11RootOfTrust.from_uri(wrong, create=True)
        assert hsm.pin not in str(info.value)
        root = Pkcs11RootOfTrust.from_uri(uri, create=True)
        try:
            # While the token is logged in, another PIN is still refused, not waved through.
            with pytest.raises(RootOfTrustError, match="another PIN"):
                Pkcs11RootOfTrust.from_uri(wrong)
        finally:
            root.close()


def test_factory_refuses_unknown_specs(tmp_path: Path) -> None:
    for spec in ("", "Local", "file:/x", "hsm", "pkcs12:token=a"):
        with pytest.raises(ValidationError, match="local"):
            open_root_of_trust(spec, tmp_path)


def test_factory_pkcs11_without_create_needs_the_key(
    softhsm_token: TempSoftHSM, tmp_path: Path
) -> None:
    label = _label()
    with pytest.raises(RootOfTrustError, match="create"):
        open_root_of_trust(softhsm_token.uri(label), tmp_path)
    created = open_root_of_trust(softhsm_token.uri(label), tmp_path, create=True)
    opened = open_root_of_trust(softhsm_token.uri(label), tmp_path)
    try:
        assert opened.unwrap(created.wrap(MATERIAL, IDENTITY), IDENTITY) == MATERIAL
    finally:
        created.close()
        opened.close()


def test_a_nested_softhsm_neither_sees_nor_breaks_the_session_token(
    softhsm_token: TempSoftHSM, tmp_path: Path
) -> None:
    outer_conf = os.environ.get(CONF_ENV)
    label = _label()
    outer = Pkcs11RootOfTrust.from_uri(softhsm_token.uri(label), create=True)
    wrapped = outer.wrap(MATERIAL, IDENTITY)
    try:
        with TempSoftHSM(tmp_path / "inner") as inner:
            inner_tokens = inner.token_dir
            assert os.environ[CONF_ENV] == str(inner.conf_path)
            assert inner.module_path != softhsm_token.module_path
            # Same token label, separate token: the outer key is not there.
            with pytest.raises(RootOfTrustError):
                Pkcs11RootOfTrust.from_uri(inner.uri(label))
            inner_root = Pkcs11RootOfTrust.from_uri(inner.uri(label), create=True)
            with pytest.raises(RootOfTrustError):
                inner_root.unwrap(wrapped, IDENTITY)
            inner_root.close()
            assert outer.unwrap(wrapped, IDENTITY) == MATERIAL
        assert os.environ.get(CONF_ENV) == outer_conf
        assert not inner_tokens.exists()
        assert outer.unwrap(wrapped, IDENTITY) == MATERIAL
    finally:
        outer.close()


def test_softhsm_restores_an_unset_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(CONF_ENV, raising=False)
    hsm = TempSoftHSM(tmp_path / "hsm")
    with hsm:
        conf = hsm.conf_path
        assert os.environ[CONF_ENV] == str(conf)
        assert f"directories.tokendir = {hsm.token_dir}" in conf.read_text(encoding="utf-8")
    assert CONF_ENV not in os.environ
    assert not conf.exists()
    assert hsm.pin not in repr(hsm)


def test_a_forked_child_refuses_to_use_the_parents_root(softhsm_token: TempSoftHSM) -> None:
    root = Pkcs11RootOfTrust.from_uri(softhsm_token.uri(_label()), create=True)
    try:
        wrapped = root.wrap(MATERIAL, IDENTITY)
        pid = os.fork()
        if pid == 0:  # the child: never return into pytest
            code = 1
            try:
                root.unwrap(wrapped, IDENTITY)
            except RootOfTrustError as exc:
                code = 0 if "another process" in str(exc) else 2
            finally:
                root.close()  # must not log the parent out
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert root.unwrap(wrapped, IDENTITY) == MATERIAL
    finally:
        root.close()
