"""PKCS#11 URIs (RFC 7512) naming the root key: parsing and formatting, no I/O.

::

    pkcs11:token=strongroom;object=root?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234

The path names the token (``token``, ``serial``, ``slot-id``) and the key (``object``, its
label; ``type``, which must be ``secret-key`` if given). The query names the PKCS#11 module
(``module-path``) and where the user PIN comes from: ``pin-value`` inline or ``pin-source``
(a ``file:`` URI or an absolute path of a file holding the PIN). Values are
percent-encoded UTF-8 as RFC 7512 says. Attributes this module does not know, repeated
attributes and characters the RFC does not allow are refused with a
:class:`~strongroom.errors.ValidationError`, so a typo never silently names another key.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from urllib.parse import quote, unquote_to_bytes

from strongroom.errors import ValidationError

SCHEME = "pkcs11:"
"""The URI scheme prefix (compared case-insensitively, as RFC 3986 says)."""

MAX_URI_CHARS = 4096
"""Longest URI accepted: far more than any real one, small enough to refuse junk early."""

MAX_SLOT_ID = 2**64 - 1
"""Largest ``slot-id`` (a ``CK_ULONG``)."""

_UNRESERVED = string.ascii_letters + string.digits + "-._~"
_PATH_SAFE = ":[]@!$'()*+,=&"
_QUERY_SAFE = ":[]@!$'()*+,=/?|;"
_PATH_CHARS = frozenset(_UNRESERVED + _PATH_SAFE)
_QUERY_CHARS = frozenset(_UNRESERVED + _QUERY_SAFE)
_HEX = frozenset(string.hexdigits)

_PATH_ATTRS = frozenset({"token", "serial", "slot-id", "object", "type"})
_QUERY_ATTRS = frozenset({"module-path", "pin-value", "pin-source"})
_OBJECT_TYPES = frozenset({"cert", "data", "private", "public", "secret-key"})


@dataclass(frozen=True, slots=True)
class Pkcs11Uri:
    """The parts of a PKCS#11 URI that Strongroom uses; ``None`` where absent.

    ``pin_value`` is left out of ``repr``; :meth:`to_text` leaves it out unless asked.
    """

    token: str | None = None
    serial: str | None = None
    slot_id: int | None = None
    object: str | None = None
    type: str | None = None
    module_path: str | None = None
    pin_value: str | None = field(default=None, repr=False)
    pin_source: str | None = None

    def to_text(self, *, include_pin: bool = False) -> str:
        """Format as an RFC 7512 URI; ``pin-value`` only with ``include_pin=True``."""
        path: list[str] = []
        for name, value in (
            ("token", self.token),
            ("serial", self.serial),
            ("slot-id", None if self.slot_id is None else str(self.slot_id)),
            ("object", self.object),
            ("type", self.type),
        ):
            if value is not None:
                path.append(f"{name}={quote(value, safe=_PATH_SAFE)}")
        query: list[str] = []
        pin = self.pin_value if include_pin else None
        for name, value in (
            ("module-path", self.module_path),
            ("pin-value", pin),
            ("pin-source", self.pin_source),
        ):
            if value is not None:
                query.append(f"{name}={quote(value, safe=_QUERY_SAFE)}")
        text = SCHEME + ";".join(path)
        return text + "?" + "&".join(query) if query else text


def is_pkcs11_uri(text: str) -> bool:
    """Tell whether ``text`` starts with the ``pkcs11:`` scheme."""
    return text[: len(SCHEME)].lower() == SCHEME


def parse_pkcs11_uri(text: str) -> Pkcs11Uri:
    """Parse an RFC 7512 URI; raise :class:`ValidationError` for anything malformed.

    Error messages name the offending attribute, never its value (it may be a PIN).
    """
    if len(text) > MAX_URI_CHARS:
        raise ValidationError(f"a PKCS#11 URI must be at most {MAX_URI_CHARS} characters")
    if not is_pkcs11_uri(text):
        raise ValidationError("a PKCS#11 URI must start with 'pkcs11:'")
    body = text[len(SCHEME) :]
    path_text, has_query, query_text = body.partition("?")
    values: dict[str, str] = {}
    _parse_part(path_text, ";", _PATH_ATTRS, _PATH_CHARS, "path", values)
    if has_query:
        _parse_part(query_text, "&", _QUERY_ATTRS, _QUERY_CHARS, "query", values)
    return _build(values)


def _parse_part(
    text: str,
    separator: str,
    known: frozenset[str],
    allowed: frozenset[str],
    where: str,
    into: dict[str, str],
) -> None:
    if not text:
        return
    for item in text.split(separator):
        name, has_equals, raw = item.partition("=")
        if not has_equals:
            raise ValidationError(f"PKCS#11 URI {where} attribute '{_shown(name)}' has no value")
        if name not in known:
            raise ValidationError(
                f"PKCS#11 URI {where} attribute '{_shown(name)}' is not supported"
            )
        if name in into:
            raise ValidationError(f"PKCS#11 URI attribute '{name}' appears twice")
        into[name] = _decode(raw, allowed, name)


def _shown(name: str) -> str:
    """An attribute name safe to echo: short, printable ASCII only."""
    cleaned = "".join(c if c in _PATH_CHARS else "?" for c in name[:40])
    return cleaned or "(empty)"


def _decode(raw: str, allowed: frozenset[str], name: str) -> str:
    index = 0
    while index < len(raw):
        char = raw[index]
        if char == "%":
            if len(raw) < index + 3 or not {raw[index + 1], raw[index + 2]} <= _HEX:
                raise ValidationError(f"PKCS#11 URI attribute '{name}' has a bad %-escape")
            index += 3
            continue
        if char not in allowed:
            raise ValidationError(
                f"PKCS#11 URI attribute '{name}' holds a character that must be %-encoded"
            )
        index += 1
    try:
        value = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(f"PKCS#11 URI attribute '{name}' is not UTF-8") from exc
    if not value:
        raise ValidationError(f"PKCS#11 URI attribute '{name}' is empty")
    return value


def _build(values: dict[str, str]) -> Pkcs11Uri:
    slot_id: int | None = None
    if "slot-id" in values:
        text = values["slot-id"]
        if not (text.isascii() and text.isdigit()) or len(text) > 20 or int(text) > MAX_SLOT_ID:
            raise ValidationError("PKCS#11 URI attribute 'slot-id' must be a decimal CK_SLOT_ID")
        slot_id = int(text)
    object_type = values.get("type")
    if object_type is not None and object_type not in _OBJECT_TYPES:
        raise ValidationError("PKCS#11 URI attribute 'type' is not an RFC 7512 object type")
    if "pin-value" in values and "pin-source" in values:
        raise ValidationError("a PKCS#11 URI may hold 'pin-value' or 'pin-source', not both")
    return Pkcs11Uri(
        token=values.get("token"),
        serial=values.get("serial"),
        slot_id=slot_id,
        object=values.get("object"),
        type=object_type,
        module_path=values.get("module-path"),
        pin_value=values.get("pin-value"),
        pin_source=values.get("pin-source"),
    )


def pin_source_path(source: str) -> str:
    """Return the file path a ``pin-source`` names: ``file:///p``, ``file:/p`` or ``/p``."""
    path = source
    if source.startswith("file://"):
        path = source[len("file://") :]
        if path.startswith("localhost/"):
            path = path[len("localhost") :]
    elif source.startswith("file:"):
        path = source[len("file:") :]
    if not path.startswith("/"):
        raise ValidationError("PKCS#11 URI 'pin-source' must be a file: URI or an absolute path")
    return path
