"""The JWE of the ``strongroom`` Clevis pin, version 1 (pure: bytes in, bytes out).

A Clevis pin turns a secret into a JWE in compact serialisation (RFC 7516) whose protected
header carries ``"clevis": {"pin": <name>, <name>: {...}}``; ``clevis decrypt`` reads the
pin name there and hands the JWE to ``clevis-decrypt-<name>``. This pin's JWE::

    protected = {"alg": "dir", "enc": "A256GCM",
                 "clevis": {"pin": "strongroom",
                            "strongroom": {"v": 1, "key": <KMS key ARN>,
                                           "blob": <base64 ciphertext blob>,
                                           "context": {...}, "endpoint": ..., ...}}}
    BASE64URL(protected) || "." || "" || "." || BASE64URL(iv) || "." ||
        BASE64URL(ciphertext) || "." || BASE64URL(tag)

``alg: dir`` means the content encryption key is used directly: it is the 32-byte data
key the KMS generated and wrapped into ``blob`` (under ``context``), so the encrypted-key
part is empty. Content encryption is AES-256-GCM with a random 96-bit IV and the ASCII of
``BASE64URL(protected)`` as associated data, exactly as RFC 7516 says, so any JOSE
library (``jose jwe dec`` of Clevis itself) decrypts it given the data key. The header is
under the tag: changing the blob, the context or the endpoint fails decryption.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.errors import InvalidCiphertextError, ValidationError

PIN = "strongroom"
PIN_VERSION = 1
IV_BYTES = 12
TAG_BYTES = 16
MAX_JWE_BYTES = 64 * 1024
_SETTINGS = {"v", "key", "blob", "context", "endpoint", "region", "profile", "ca_bundle"}


def b64url(data: bytes) -> str:
    """Unpadded base64url text (RFC 7515, section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    """The bytes of unpadded, canonical base64url ``text``; a ValueError for anything else.

    Canonical: unused low bits of the last character are zero, so one value has one
    spelling (a JWE cannot be changed without being refused).
    """
    if "=" in text or any(c not in _URLSAFE for c in text):
        raise ValueError("not base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64url(data) != text:
        raise ValueError("not canonical base64url")
    return data


_URLSAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass(frozen=True, slots=True)
class PinHeader:
    """The ``clevis.strongroom`` member: where and how the data key is wrapped."""

    key: str
    blob: bytes = field(repr=False)
    context: dict[str, str]
    endpoint: str | None = None
    region: str | None = None
    profile: str | None = None
    ca_bundle: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The member as JSON (``None`` settings left out)."""
        out: dict[str, Any] = {
            "v": PIN_VERSION,
            "key": self.key,
            "blob": base64.b64encode(self.blob).decode("ascii"),
            "context": dict(sorted(self.context.items())),
        }
        for name in ("endpoint", "region", "profile", "ca_bundle"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


def protected_header(pin: PinHeader) -> bytes:
    """The protected header of a JWE for ``pin``, as compact UTF-8 JSON."""
    header = {"alg": "dir", "enc": "A256GCM", "clevis": {"pin": PIN, PIN: pin.to_json()}}
    return json.dumps(header, separators=(",", ":")).encode("utf-8")


def seal(pin: PinHeader, data_key: bytes, plaintext: bytes, iv: bytes | None = None) -> str:
    """The compact JWE of ``plaintext`` under ``data_key`` (the key ``pin.blob`` wraps)."""
    if len(data_key) != 32:
        raise ValidationError("The content encryption key must be 32 bytes.")
    iv = os.urandom(IV_BYTES) if iv is None else iv
    if len(iv) != IV_BYTES:
        raise ValidationError("The IV must be 12 bytes.")
    encoded = b64url(protected_header(pin))
    sealed = AESGCM(data_key).encrypt(iv, plaintext, encoded.encode("ascii"))
    ciphertext, tag = sealed[:-TAG_BYTES], sealed[-TAG_BYTES:]
    return ".".join([encoded, "", b64url(iv), b64url(ciphertext), b64url(tag)])


@dataclass(frozen=True, slots=True)
class ParsedJwe:
    """A pin JWE split and checked: its settings, IV, ciphertext, tag and AAD."""

    pin: PinHeader
    iv: bytes
    ciphertext: bytes = field(repr=False)
    tag: bytes
    aad: bytes


def _bad(why: str) -> InvalidCiphertextError:
    return InvalidCiphertextError(f"Not a strongroom pin JWE: {why}.")


def _pin_header(member: Any) -> PinHeader:
    if not isinstance(member, dict) or set(member) - _SETTINGS:
        raise _bad("the clevis.strongroom member is not of version 1")
    if member.get("v") != PIN_VERSION or isinstance(member.get("v"), bool):
        raise _bad(f"pin version {member.get('v')!r} is not {PIN_VERSION}")
    key, blob, context = member.get("key"), member.get("blob"), member.get("context")
    if not isinstance(key, str) or not key or not isinstance(blob, str):
        raise _bad("key or blob missing")
    if not isinstance(context, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in context.items()
    ):
        raise _bad("the context is not an object of strings")
    settings = {n: member.get(n) for n in ("endpoint", "region", "profile", "ca_bundle")}
    if not all(v is None or isinstance(v, str) for v in settings.values()):
        raise _bad("endpoint, region, profile and ca_bundle are strings")
    try:
        wrapped = base64.b64decode(blob.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise _bad("the blob is not base64") from None
    return PinHeader(key, wrapped, dict(context), **settings)


def parse(jwe: str) -> ParsedJwe:
    """Split and check a compact JWE of this pin (nothing is decrypted)."""
    if len(jwe) > MAX_JWE_BYTES:
        raise _bad("too long")
    parts = jwe.strip().split(".")
    if len(parts) != 5:
        raise _bad("a compact JWE has five parts")
    try:
        header = json.loads(unb64url(parts[0]))
        encrypted_key, iv, ciphertext, tag = (unb64url(p) for p in parts[1:])
    except ValueError:
        raise _bad("a part is not base64url JSON") from None
    if not isinstance(header, dict) or header.get("alg") != "dir" or header.get("enc") != "A256GCM":
        raise _bad("alg must be dir and enc A256GCM")
    clevis = header.get("clevis")
    if not isinstance(clevis, dict) or clevis.get("pin") != PIN:
        raise _bad(f"its clevis.pin is not {PIN!r}")
    if encrypted_key or len(iv) != IV_BYTES or len(tag) != TAG_BYTES:
        raise _bad("wrong encrypted key, IV or tag length")
    return ParsedJwe(_pin_header(clevis.get(PIN)), iv, ciphertext, tag, parts[0].encode("ascii"))


def open_sealed(parsed: ParsedJwe, data_key: bytes) -> bytes:
    """The plaintext of a parsed JWE given its data key; one error for every failure."""
    if len(data_key) != 32:
        raise InvalidCiphertextError("The JWE cannot be decrypted.")
    try:
        return AESGCM(data_key).decrypt(parsed.iv, parsed.ciphertext + parsed.tag, parsed.aad)
    except InvalidTag:
        raise InvalidCiphertextError("The JWE cannot be decrypted.") from None


def pin_context(extra: Mapping[str, str] | None) -> dict[str, str]:
    """The encryption context of a pin's data key: ``strongroom:pin=clevis`` and ``extra``.

    The fixed pair keeps pin blobs and volume tokens apart: neither can stand in for the
    other, since the KMS checks the context.
    """
    for key in extra or {}:
        if key.lower().startswith("strongroom:"):
            raise ValidationError("Context keys starting with 'strongroom:' are reserved.")
    return {**(extra or {}), "strongroom:pin": "clevis"}
