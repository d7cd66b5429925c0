"""The production root of trust: an AES-256 key inside an HSM, reached through PKCS#11.

The root key is generated inside the token as a token object that is sensitive and not
extractable, so it never leaves the HSM; wrapping and unwrapping run AES-256-GCM inside
the HSM. Layout of a wrapped key::

    u8 version = 0x01 || 12-byte random nonce || AES-256-GCM(material) || 16-byte tag

with associated data ``"strongroom/pkcs11-wrap/v1" || identity``, the same binding as
:mod:`strongroom.crypto.wrap` under another label. The nonce comes from :mod:`secrets`.

The key is named by a PKCS#11 URI (:mod:`strongroom.rootkey.pkcs11_uri`); the user PIN
comes from the URI (``pin-value`` or ``pin-source``) or the ``STRONGROOM_PKCS11_PIN``
environment variable. Calls into one module are serialised (see
:mod:`strongroom.rootkey.pkcs11_session`), so one object may be shared by any number of
threads. Open it in the process that uses it: after ``fork`` it refuses to work.
"""

from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass, TokenFlag
from pkcs11.exceptions import MultipleObjectsReturned, NoSuchKey, PKCS11Error
from pkcs11.mechanisms import GCMParams

from strongroom.errors import RootOfTrustError, ValidationError
from strongroom.rootkey.pkcs11_session import (
    PROCESS_MODULES,
    Pkcs11Module,
    Pkcs11Modules,
    TokenLogin,
)
from strongroom.rootkey.pkcs11_uri import Pkcs11Uri, parse_pkcs11_uri, pin_source_path

PIN_ENV = "STRONGROOM_PKCS11_PIN"
"""Environment variable holding the user PIN when the URI names none."""

WRAP_VERSION = 1
"""First byte of every wrapped key made by this root of trust."""

NONCE_BYTES = 12
TAG_BYTES = 16
KEY_BITS = 256
MAX_MATERIAL_BYTES = 65536
"""Largest material wrapped in one call (root keys wrap keys, not data)."""
MAX_PIN_BYTES = 255

_LABEL = b"strongroom/pkcs11-wrap/v1"
_HEADER_BYTES = 1 + NONCE_BYTES
_MAX_WRAPPED_BYTES = _HEADER_BYTES + MAX_MATERIAL_BYTES + TAG_BYTES

_KEY_TEMPLATE: dict[Attribute, Any] = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: True,
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
    Attribute.MODIFIABLE: False,
    Attribute.ENCRYPT: True,
    Attribute.DECRYPT: True,
    Attribute.WRAP: False,
    Attribute.UNWRAP: False,
    Attribute.SIGN: False,
    Attribute.VERIFY: False,
    Attribute.DERIVE: False,
}
"""Attributes of a generated root key: token-resident, private, never exportable."""


class Pkcs11RootOfTrust:
    """A :class:`~strongroom.ports.RootOfTrust` whose key lives in a PKCS#11 token.

    Build it with :meth:`from_uri`. It holds no key material; the PIN stays in the
    shared token login and is never shown.
    """

    def __init__(
        self, module: Pkcs11Module, login: TokenLogin, key: Any, token_label: str, label: str
    ) -> None:
        self._module = module
        self._login: TokenLogin | None = login
        self._key = key
        self._token_label = token_label
        self._label = label
        self._pid = os.getpid()

    def __repr__(self) -> str:
        return f"Pkcs11RootOfTrust(token={self._token_label!r}, object={self._label!r})"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a root of trust cannot be pickled")

    @classmethod
    def from_uri(
        cls,
        uri: str | Pkcs11Uri,
        *,
        create: bool = False,
        environ: Mapping[str, str] | None = None,
        modules: Pkcs11Modules | None = None,
    ) -> Pkcs11RootOfTrust:
        """Open the root key named by ``uri``; with ``create=True`` generate it if absent.

        Raises :class:`ValidationError` for a malformed URI or a missing PIN and
        :class:`RootOfTrustError` when the module, token or key cannot be used.
        """
        parsed = parse_pkcs11_uri(uri) if isinstance(uri, str) else uri
        module_path, label = _check_uri(parsed)
        pin = resolve_pin(parsed, os.environ if environ is None else environ)
        module = (PROCESS_MODULES if modules is None else modules).get(module_path)
        with module.lock:
            token = _find_token(module.lib, parsed)
            login = module.login(token, pin)
            try:
                key = _find_key(login.session, label, create)
            except BaseException:
                module.release(login)
                raise
            return cls(module, login, key, str(token.label), label)

    @property
    def description(self) -> str:
        """``pkcs11``."""
        return "pkcs11"

    def wrap(self, material: bytes, identity: bytes) -> bytes:
        """Encrypt ``material`` inside the HSM, bound to ``identity``."""
        if len(material) > MAX_MATERIAL_BYTES:
            raise RootOfTrustError(f"key material longer than {MAX_MATERIAL_BYTES} bytes")
        nonce = secrets.token_bytes(NONCE_BYTES)
        params = GCMParams(nonce, _LABEL + identity, TAG_BYTES * 8)
        with self._module.lock:
            self._check_usable()
            try:
                sealed = self._key.encrypt(
                    bytes(material), mechanism=Mechanism.AES_GCM, mechanism_param=params
                )
            except PKCS11Error as exc:
                raise RootOfTrustError("the HSM could not wrap a key") from exc
        if not isinstance(sealed, bytes) or len(sealed) != len(material) + TAG_BYTES:
            raise RootOfTrustError("the HSM returned a wrapped key of the wrong length")
        return bytes((WRAP_VERSION,)) + nonce + sealed

    def unwrap(self, wrapped: bytes, identity: bytes) -> bytes:
        """Decrypt a wrapped key inside the HSM; any mismatch raises ``RootOfTrustError``."""
        if (
            not _HEADER_BYTES + TAG_BYTES <= len(wrapped) <= _MAX_WRAPPED_BYTES
            or wrapped[0] != WRAP_VERSION
        ):
            raise RootOfTrustError("the root of trust could not unwrap a key")
        nonce = bytes(wrapped[1:_HEADER_BYTES])
        params = GCMParams(nonce, _LABEL + identity, TAG_BYTES * 8)
        with self._module.lock:
            self._check_usable()
            try:
                material = self._key.decrypt(
                    bytes(wrapped[_HEADER_BYTES:]),
                    mechanism=Mechanism.AES_GCM,
                    mechanism_param=params,
                )
            except PKCS11Error as exc:
                raise RootOfTrustError("the root of trust could not unwrap a key") from exc
        expected = len(wrapped) - _HEADER_BYTES - TAG_BYTES
        if not isinstance(material, bytes) or len(material) != expected:
            raise RootOfTrustError("the root of trust could not unwrap a key")
        return material

    def close(self) -> None:
        """Give back this object's share of the token login; idempotent."""
        with self._module.lock:
            login, self._login = self._login, None
            self._key = None
            if login is not None and os.getpid() == self._pid:
                self._module.release(login)

    def _check_usable(self) -> None:
        if self._login is None:
            raise RootOfTrustError("the root of trust is closed")
        if os.getpid() != self._pid:
            raise RootOfTrustError("the root of trust was opened in another process")


def resolve_pin(uri: Pkcs11Uri, environ: Mapping[str, str]) -> str:
    """Return the user PIN: ``pin-value``, else the ``pin-source`` file, else ``$PIN_ENV``."""
    if uri.pin_value is not None:
        return uri.pin_value
    if uri.pin_source is not None:
        path = Path(pin_source_path(uri.pin_source))
        try:
            with path.open("rb") as handle:
                raw = handle.read(MAX_PIN_BYTES + 3)
        except OSError as exc:
            raise RootOfTrustError(f"cannot read the PIN file {path}") from exc
        try:
            pin = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            raise ValidationError(f"the PIN file {path} is not UTF-8") from exc
        if not pin or len(pin.encode("utf-8")) > MAX_PIN_BYTES:
            raise ValidationError(f"the PIN file {path} must hold 1 to {MAX_PIN_BYTES} bytes")
        return pin
    pin = environ.get(PIN_ENV, "")
    if not pin:
        raise ValidationError(
            f"no PKCS#11 PIN: put pin-value or pin-source in the URI, or set {PIN_ENV}"
        )
    return pin


def _check_uri(uri: Pkcs11Uri) -> tuple[str, str]:
    if uri.module_path is None:
        raise ValidationError("the PKCS#11 URI must name the module (module-path=...)")
    if uri.object is None:
        raise ValidationError("the PKCS#11 URI must name the root key (object=...)")
    if uri.token is None and uri.serial is None and uri.slot_id is None:
        raise ValidationError("the PKCS#11 URI must name the token (token, serial or slot-id)")
    if uri.type not in (None, "secret-key"):
        raise ValidationError("the root key is a secret key: type must be 'secret-key'")
    return uri.module_path, uri.object


def _find_token(lib: Any, uri: Pkcs11Uri) -> Any:
    try:
        found = []
        seen: list[str] = []
        for slot in lib.get_slots(token_present=True):
            token = slot.get_token()
            if not token.flags & TokenFlag.TOKEN_INITIALIZED:
                continue
            seen.append(str(token.label).strip())
            if uri.slot_id is not None and slot.slot_id != uri.slot_id:
                continue
            if uri.token is not None and token.label != uri.token:
                continue
            if uri.serial is not None and _serial_text(token.serial) != uri.serial:
                continue
            found.append(token)
    except PKCS11Error as exc:
        raise RootOfTrustError("cannot list the tokens of the PKCS#11 module") from exc
    if not found:
        raise RootOfTrustError(_no_token_message(uri, seen))
    if len(found) > 1:
        raise RootOfTrustError("more than one PKCS#11 token matches the URI")
    return found[0]


def _no_token_message(uri: Pkcs11Uri, seen: list[str]) -> str:
    """Why no token matched: which the module offers, and SoftHSM's usual cause."""
    wanted = ", ".join(
        f"{name}={value}"
        for name, value in (("token", uri.token), ("serial", uri.serial), ("slot-id", uri.slot_id))
        if value is not None
    )
    offered = ", ".join(repr(label) for label in seen) if seen else "none"
    message = (
        f"no initialised PKCS#11 token matches the URI ({wanted}); "
        f"the module {uri.module_path} offers: {offered}"
    )
    if "softhsm" in (uri.module_path or "").lower():
        conf = os.environ.get("SOFTHSM2_CONF")
        if conf:
            message += f". SoftHSM reads its tokens from the tokendir of {conf} (SOFTHSM2_CONF)"
        else:
            message += (
                ". SOFTHSM2_CONF is not set, so SoftHSM looked in the tokendir of "
                "/etc/softhsm/softhsm2.conf: set SOFTHSM2_CONF to the configuration file "
                "the token was created with"
            )
    return message


def _serial_text(serial: bytes | str) -> str:
    text = serial.decode("ascii", "replace") if isinstance(serial, bytes) else serial
    return text.strip()


def _secret_key(session: Any, label: str) -> Any:
    """The one secret key labelled ``label``: ``NoSuchKey`` or ``MultipleObjectsReturned``.

    What ``Session.get_key`` does, but the search is ended here, while the session is open:
    python-pkcs11's ``get_key`` leaves it open when a second key matches, and its generator
    then ends in a finalizer after the session has closed (``SessionHandleInvalid``).
    """
    search = session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.LABEL: label})
    try:
        found = list(itertools.islice(search, 2))
    finally:
        search.close()
    if not found:
        raise NoSuchKey(f"no secret key labelled {label!r}")
    if len(found) > 1:
        raise MultipleObjectsReturned(f"more than one secret key labelled {label!r}")
    return found[0]


def _find_key(session: Any, label: str, create: bool) -> Any:
    try:
        try:
            key = _secret_key(session, label)
        except NoSuchKey:
            if not create:
                raise RootOfTrustError(
                    f"the token holds no key labelled {label!r} (create it first)"
                ) from None
            key = session.generate_key(
                KeyType.AES,
                KEY_BITS,
                label=label,
                store=True,
                capabilities=MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT,
                template=dict(_KEY_TEMPLATE),
            )
        attrs = key.get_attributes(
            [
                Attribute.KEY_TYPE,
                Attribute.VALUE_LEN,
                Attribute.TOKEN,
                Attribute.SENSITIVE,
                Attribute.EXTRACTABLE,
                Attribute.ENCRYPT,
                Attribute.DECRYPT,
            ]
        )
    except PKCS11Error as exc:
        raise RootOfTrustError(
            f"cannot find or create the root key {label!r} ({type(exc).__name__})"
        ) from exc
    _check_key(attrs, label)
    return key


def _check_key(attrs: Mapping[Attribute, Any], label: str) -> None:
    """Refuse a key that is not a token-resident, non-exportable AES-256 key."""
    if attrs.get(Attribute.KEY_TYPE) != KeyType.AES or attrs.get(Attribute.VALUE_LEN) != 32:
        raise RootOfTrustError(f"the key labelled {label!r} is not an AES-256 key")
    if attrs.get(Attribute.TOKEN) is not True:
        raise RootOfTrustError(f"the key labelled {label!r} is not stored in the token")
    if attrs.get(Attribute.SENSITIVE) is not True or attrs.get(Attribute.EXTRACTABLE) is not False:
        raise RootOfTrustError(
            f"the key labelled {label!r} can leave the HSM (it must be sensitive and "
            "not extractable)"
        )
    if attrs.get(Attribute.ENCRYPT) is not True or attrs.get(Attribute.DECRYPT) is not True:
        raise RootOfTrustError(f"the key labelled {label!r} may not encrypt and decrypt")
