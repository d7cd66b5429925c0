"""RFC 7512 URI parsing and formatting: examples, and properties over generated URIs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.errors import ValidationError
from strongroom.rootkey.pkcs11_uri import (
    MAX_SLOT_ID,
    MAX_URI_CHARS,
    Pkcs11Uri,
    is_pkcs11_uri,
    parse_pkcs11_uri,
    pin_source_path,
)

values = st.text(min_size=1, max_size=40)
optional = st.none() | values


@st.composite
def uris(draw: st.DrawFn) -> Pkcs11Uri:
    pin_kind = draw(st.sampled_from(["none", "value", "source"]))
    return Pkcs11Uri(
        token=draw(optional),
        serial=draw(optional),
        slot_id=draw(st.none() | st.integers(0, MAX_SLOT_ID)),
        object=draw(optional),
        type=draw(st.none() | st.sampled_from(["secret-key", "cert", "data"])),
        module_path=draw(optional),
        pin_value=draw(values) if pin_kind == "value" else None,
        pin_source=draw(values) if pin_kind == "source" else None,
    )


def test_the_documented_example() -> None:
    uri = parse_pkcs11_uri(
        "pkcs11:token=strongroom;object=root"
        "?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234"
    )
    assert uri == Pkcs11Uri(
        token="strongroom",
        object="root",
        module_path="/usr/lib/softhsm/libsofthsm2.so",
        pin_value="1234",
    )


def test_rfc_7512_style_escapes_and_reserved_characters() -> None:
    uri = parse_pkcs11_uri(
        "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;serial=DECC0401648;"
        "slot-id=0001;object=a=b&c%3Bd;type=secret-key"
        "?pin-source=file:/etc/token.pin"
    )
    assert uri.token == "The Software PKCS#11 Softtoken"
    assert uri.serial == "DECC0401648"
    assert uri.slot_id == 1
    assert uri.object == "a=b&c;d"
    assert uri.type == "secret-key"
    assert uri.pin_source == "file:/etc/token.pin"
    assert uri.pin_value is None


def test_utf8_values_and_case_insensitive_scheme() -> None:
    uri = parse_pkcs11_uri("PKCS11:object=cl%C3%A9")
    assert uri.object == "clé"
    assert is_pkcs11_uri("Pkcs11:")
    assert not is_pkcs11_uri("local")


def test_an_empty_uri_names_nothing() -> None:
    assert parse_pkcs11_uri("pkcs11:") == Pkcs11Uri()
    assert parse_pkcs11_uri("pkcs11:?") == Pkcs11Uri()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("local", "must start"),
        ("pkcs11:token=a;token=b", "twice"),
        ("pkcs11:colour=blue", "not supported"),
        ("pkcs11:id=%01", "not supported"),
        ("pkcs11:?module-name=softhsm2", "not supported"),
        ("pkcs11:object=root?token=a", "not supported"),
        ("pkcs11:token", "no value"),
        ("pkcs11:token=", "empty"),
        ("pkcs11:token=a%2", "escape"),
        ("pkcs11:token=a%zz", "escape"),
        ("pkcs11:token=%FF", "UTF-8"),
        ("pkcs11:token=a b", "%-encoded"),
        ("pkcs11:token=a/b", "%-encoded"),
        ("pkcs11:token=clé", "%-encoded"),
        ("pkcs11:token=a#frag", "%-encoded"),
        ("pkcs11:slot-id=x1", "slot-id"),
        ("pkcs11:slot-id=-1", "slot-id"),
        (f"pkcs11:slot-id={MAX_SLOT_ID + 1}", "slot-id"),
        ("pkcs11:type=secret", "type"),
        ("pkcs11:?pin-value=1&pin-source=/p", "not both"),
        ("pkcs11:object=" + "a" * MAX_URI_CHARS, "at most"),
    ],
)
def test_malformed_uris_are_refused(text: str, fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        parse_pkcs11_uri(text)


def test_errors_never_echo_a_pin() -> None:
    with pytest.raises(ValidationError) as info:
        parse_pkcs11_uri("pkcs11:?pin-value=s3cr3t%zz")
    assert "s3cr3t" not in str(info.value)


@given(uris())
def test_format_then_parse_round_trips(uri: Pkcs11Uri) -> None:
    assert parse_pkcs11_uri(uri.to_text(include_pin=True)) == uri


@given(uris())
def test_formatted_uris_hold_only_allowed_ascii(uri: Pkcs11Uri) -> None:
    text = uri.to_text(include_pin=True)
    assert text.isascii()
    assert " " not in text
    assert "#" not in text


@given(uris(), st.text(min_size=1, max_size=20))
def test_the_pin_stays_out_of_repr_and_default_text(uri: Pkcs11Uri, pin: str) -> None:
    marker = "PIN\u2603" + pin
    secret = Pkcs11Uri(
        token=uri.token, object=uri.object, module_path=uri.module_path, pin_value=marker
    )
    assert marker not in repr(secret)
    assert "pin-value" not in secret.to_text()
    assert parse_pkcs11_uri(secret.to_text()).pin_value is None


@given(st.text(max_size=200))
def test_arbitrary_text_parses_or_raises_validation_error(text: str) -> None:
    try:
        uri = parse_pkcs11_uri("pkcs11:" + text)
    except ValidationError:
        return
    assert parse_pkcs11_uri(uri.to_text(include_pin=True)) == uri


@given(st.text(alphabet="tokenobjectslid-=;?&%0123456789abcdefABCDEF/ :", max_size=80))
def test_uri_like_text_parses_or_raises_validation_error(text: str) -> None:
    try:
        uri = parse_pkcs11_uri("pkcs11:" + text)
    except ValidationError:
        return
    assert parse_pkcs11_uri(uri.to_text(include_pin=True)) == uri


@pytest.mark.parametrize(
    ("source", "path"),
    [
        ("/etc/pin", "/etc/pin"),
        ("file:/etc/pin", "/etc/pin"),
        ("file:///etc/pin", "/etc/pin"),
        ("file://localhost/etc/pin", "/etc/pin"),
    ],
)
def test_pin_source_paths(source: str, path: str) -> None:
    assert pin_source_path(source) == path


@pytest.mark.parametrize("source", ["pin.txt", "file:pin.txt", "file://host/etc/pin", "env:PIN"])
def test_pin_sources_that_are_not_absolute_files_are_refused(source: str) -> None:
    with pytest.raises(ValidationError):
        pin_source_path(source)
