"""The volume token, version 2 (version 1 still read): a LUKS2 token of type ``strongroom``.

One token per Strongroom keyslot. It holds the keyslot's passphrase wrapped by a KMS key
(a ``GenerateDataKey`` ciphertext blob), the encryption context it was wrapped with and,
from version 2, a keyed check of the passphrase::

    {"type": "strongroom", "keyslots": ["1"], "version": 2,
     "key_id": "arn:aws:kms:eu-west-1:111122223333:key/...",
     "wrapped_key": "<base64 of the ciphertext blob>",
     "context": {"strongroom:tenant": "111122223333",
                 "strongroom:volume": "<the LUKS2 UUID>", ...},
     "check": "<base64 of HMAC-SHA256(passphrase, label, UUID, keyslot, keyslot salt)>"}

The passphrase is the 32-byte data key written in unpadded base64url (43 characters): full
entropy, so the keyslot needs no costly PBKDF, and printable, so ``strongroom volume
pass`` output can be typed or piped like ``clevis luks pass`` output. The context names
the volume and its tenant: the KMS refuses to unwrap the blob for any other volume, and a
key policy or grant can allow ``kms:Decrypt`` for one volume only
(``kms:EncryptionContext:strongroom:volume``). The LUKS2 header is not authenticated, so
nothing here is trusted: the KMS checks the blob and its context, and the unwrapped
passphrase is checked against ``check`` (version 2) or tested against the keyslot with
cryptsetup (version 1, or a check that does not match) before use.

Why the check: testing a passphrase with ``cryptsetup open --test-passphrase`` is a second
process per unlock, about a third of the CPU of ``volume pass``. The check is one HMAC
over values the reader has. It leaks nothing usable: it is a PRF output keyed by 256
random bits (guessing the passphrase from it is as hopeless as from the keyslot, against
which anyone who reads the header can test guesses too), and it is only ever written for
passphrases made here. It binds the volume UUID, the keyslot number and the keyslot's KDF
salt (new whenever cryptsetup rewrites the keyslot, e.g. ``luksChangeKey``), so it holds
only while the keyslot is the one the token was written for, and a check or blob moved to
another token or volume does not verify; when it does not, readers fall back to
cryptsetup's test. It is computed with the standard library's ``hmac.digest`` (OpenSSL's
HMAC, already loaded for SigV4; importing ``cryptography`` for it would add about a fifth
to the CPU of ``volume pass``); ``tests`` compare it with ``cryptography``'s HMAC.
Spec: docs/formats.md, "Volume token, version 2".
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re

from strongroom.errors import ValidationError

TYPE_CHECKING = False  # not typing's: this module is on the fast `volume pass` path
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

TOKEN_TYPE = "strongroom"  # noqa: S105 - a LUKS2 token type, not a password
TOKEN_VERSION = 2
"""The version :meth:`VolumeToken.to_json` writes for a token with a check."""
READABLE_VERSIONS = (1, 2)
CHECK_LABEL = b"strongroom volume token check v2"
"""The HMAC message's first field: nothing else keyed by a passphrase uses this label."""
CHECK_BYTES = 32
VOLUME_CONTEXT_KEY = "strongroom:volume"
TENANT_CONTEXT_KEY = "strongroom:tenant"
RESERVED_PREFIX = "strongroom:"
MAX_WRAPPED_KEY_BYTES = 6144
"""AWS's limit on a ``CiphertextBlob``; a longer one is refused before decoding it."""
MAX_CONTEXT_PAIRS = 16
_ARN = re.compile(r"arn:aws[a-z-]*:kms:([a-z0-9-]+):(\d{12}):key/[A-Za-z0-9-]{1,128}")
_MEMBERS = {"type", "keyslots", "version", "key_id", "wrapped_key", "context"}
_MEMBERS_V2 = _MEMBERS | {"check"}


def passphrase_of(data_key: bytes) -> bytes:
    """The keyslot passphrase of a 32-byte data key: unpadded base64url, 43 ASCII bytes."""
    if len(data_key) != 32:
        raise ValidationError("A volume data key is 32 bytes.")
    return base64.urlsafe_b64encode(data_key).rstrip(b"=")


def keyslot_check(passphrase: bytes, volume: str, keyslot: int, salt: str) -> bytes:
    """The check of a version-2 token: HMAC-SHA256 keyed by the keyslot passphrase.

    Message: ``CHECK_LABEL || 0x00 || lower-case volume UUID || 0x00 || keyslot in
    decimal || 0x00 || the keyslot's KDF salt as the header's JSON holds it`` (UTF-8).
    See the module docstring for why it is safe to store.
    """
    fields = (CHECK_LABEL, volume.lower().encode(), str(keyslot).encode(), salt.encode())
    return hmac.digest(passphrase, b"\0".join(fields), "sha256")


def key_arn_parts(arn: str) -> tuple[str, str]:
    """``(region, account)`` of a KMS key ARN; a ValidationError for anything else."""
    match = _ARN.fullmatch(arn)
    if match is None:
        raise ValidationError(f"Not a KMS key ARN: {arn[:200]!r}.")
    return match.group(1), match.group(2)


def volume_context(
    uuid: str, tenant: str, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The encryption context of a volume's passphrase: its UUID, its tenant and ``extra``.

    ``extra`` keys may not use the reserved ``strongroom:`` prefix.
    """
    for key in extra or {}:
        if key.lower().startswith(RESERVED_PREFIX):
            raise ValidationError(f"Context keys starting with {RESERVED_PREFIX!r} are reserved.")
    if len(extra or {}) > MAX_CONTEXT_PAIRS - 2:
        raise ValidationError(f"At most {MAX_CONTEXT_PAIRS - 2} extra context pairs.")
    return {**(extra or {}), TENANT_CONTEXT_KEY: tenant, VOLUME_CONTEXT_KEY: uuid}


class VolumeToken:
    """A parsed ``strongroom`` token: keyslot, KMS key ARN, wrapped key, context, check.

    ``check`` is ``None`` for a version-1 token (and then :meth:`to_json` writes version
    1 again). A plain slotted value class (no dataclass: see
    :class:`~.header.Luks2Header`); the wrapped key and the check stay out of ``repr``.
    """

    __slots__ = ("check", "context", "key_id", "keyslot", "wrapped_key")

    def __init__(
        self,
        keyslot: int,
        key_id: str,
        wrapped_key: bytes,
        context: dict[str, str],
        check: bytes | None = None,
    ) -> None:
        self.keyslot = keyslot
        self.key_id = key_id
        self.wrapped_key = wrapped_key
        self.context = context
        self.check = check

    def _fields(self) -> tuple[int, str, bytes, dict[str, str], bytes | None]:
        return (self.keyslot, self.key_id, self.wrapped_key, self.context, self.check)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VolumeToken):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # the context is a dict

    def __repr__(self) -> str:
        return (
            f"VolumeToken(keyslot={self.keyslot}, key_id={self.key_id!r}, "
            f"context={self.context!r}, version={self.version})"
        )

    @property
    def version(self) -> int:
        """2 with a check, 1 without."""
        return 1 if self.check is None else TOKEN_VERSION

    @property
    def volume(self) -> str:
        """The UUID the token says it belongs to."""
        return self.context[VOLUME_CONTEXT_KEY]

    @property
    def tenant(self) -> str:
        """The tenant (account id) the token says it belongs to."""
        return self.context[TENANT_CONTEXT_KEY]

    def matches(self, passphrase: bytes, salt: str) -> bool:
        """Whether the check was made for ``passphrase`` and the keyslot ``salt`` (version 2)."""
        if self.check is None:
            raise ValueError("a version-1 token has no check")
        expected = keyslot_check(passphrase, self.volume, self.keyslot, salt)
        return hmac.compare_digest(expected, self.check)

    def with_check(self, passphrase: bytes, salt: str) -> VolumeToken:
        """The same token at version 2, its check made for ``passphrase`` and ``salt``."""
        check = keyslot_check(passphrase, self.volume, self.keyslot, salt)
        return VolumeToken(self.keyslot, self.key_id, self.wrapped_key, dict(self.context), check)

    def to_json(self) -> dict[str, Any]:
        """The LUKS2 token object (what ``cryptsetup token import`` reads)."""
        obj = {
            "type": TOKEN_TYPE,
            "keyslots": [str(self.keyslot)],
            "version": self.version,
            "key_id": self.key_id,
            "wrapped_key": base64.b64encode(self.wrapped_key).decode("ascii"),
            "context": dict(sorted(self.context.items())),
        }
        if self.check is not None:
            obj["check"] = base64.b64encode(self.check).decode("ascii")
        return obj

    def encode(self) -> bytes:
        """:meth:`to_json` as compact UTF-8 JSON."""
        return json.dumps(self.to_json(), separators=(",", ":")).encode("utf-8")


def _fail(token_id: int | None, why: str) -> ValidationError:
    where = "" if token_id is None else f" {token_id}"
    return ValidationError(f"The strongroom token{where} is malformed: {why}.")


def parse_token(obj: Mapping[str, Any], token_id: int | None = None) -> VolumeToken:
    """A :class:`VolumeToken` from a token object of type ``strongroom``, checked strictly.

    Unknown versions and members, a key that is not a KMS key ARN, a context that does not
    name a volume and its tenant (or names another tenant than the ARN's account) are
    refused with a :class:`~strongroom.errors.ValidationError`.
    """
    if obj.get("type") != TOKEN_TYPE:
        raise _fail(token_id, f"its type is {obj.get('type')!r}, not {TOKEN_TYPE!r}")
    version = obj.get("version")
    if version not in READABLE_VERSIONS or not isinstance(version, int) or version is True:
        raise _fail(token_id, f"version {version!r} is not 1 or 2")
    unknown = set(obj) - (_MEMBERS if version == 1 else _MEMBERS_V2)
    if unknown:
        raise _fail(token_id, f"unknown members {sorted(unknown)}")
    slots = obj.get("keyslots")
    if not isinstance(slots, list) or len(slots) != 1 or not isinstance(slots[0], str):
        raise _fail(token_id, "it must be assigned to exactly one keyslot")
    if not slots[0].isdigit() or not 0 <= int(slots[0]) < 32:
        raise _fail(token_id, "its keyslot is not a LUKS2 keyslot number")
    key_id, wrapped, context = obj.get("key_id"), obj.get("wrapped_key"), obj.get("context")
    if not isinstance(key_id, str) or _ARN.fullmatch(key_id) is None:
        raise _fail(token_id, "key_id is not a KMS key ARN")
    if not isinstance(wrapped, str) or not wrapped or len(wrapped) > MAX_WRAPPED_KEY_BYTES * 2:
        raise _fail(token_id, "wrapped_key is missing or too long")
    try:
        blob = base64.b64decode(wrapped.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise _fail(token_id, "wrapped_key is not base64") from None
    if not isinstance(context, dict) or len(context) > MAX_CONTEXT_PAIRS:
        raise _fail(token_id, "context is not an object of at most 16 pairs")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in context.items()):
        raise _fail(token_id, "context members must be strings")
    if not context.get(VOLUME_CONTEXT_KEY) or not context.get(TENANT_CONTEXT_KEY):
        raise _fail(token_id, f"context must name {VOLUME_CONTEXT_KEY} and {TENANT_CONTEXT_KEY}")
    if key_arn_parts(key_id)[1] != context[TENANT_CONTEXT_KEY]:
        raise _fail(token_id, "its key belongs to another tenant than its context names")
    check = None
    if version == TOKEN_VERSION:
        check = _decoded_check(obj.get("check"))
        if check is None:
            raise _fail(token_id, f"check is not the base64 of {CHECK_BYTES} bytes")
    return VolumeToken(int(slots[0]), key_id, blob, dict(context), check)


def _decoded_check(text: object) -> bytes | None:
    if not isinstance(text, str) or len(text) != 44:
        return None
    try:
        check = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        return None
    return check if len(check) == CHECK_BYTES else None
