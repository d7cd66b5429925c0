"""The KMS ciphertext blob, version 1 (what Encrypt and GenerateDataKey return).

Layout (all integers big-endian)::

    u8  version = 0x01
    u8  kind            0x01 = under a KMS key version, 0x02 = under a user key
    u8  len(key_id)     1..64, then key_id (ASCII)
    u32 key_version     1..2^32-1
    [kind 0x02 only: u16 len(user_id) 1..256, then user_id (UTF-8)]
    16  salt            random per message
    12  nonce           random per message
    ..  ciphertext || 16-byte GCM tag

Each message has its own key, ``HKDF-Expand(version material, "strongroom/blob/v1" || salt)``,
and AES-256-GCM authenticates ``"strongroom/blob/v1" || lp(tenant) || header || context``
where ``header`` is every byte before the salt and ``context`` the canonical encryption
context. So the tenant, key, version, user and context are all bound: changing any of
them, or any bit of the blob, fails as one :class:`InvalidBlob`. The header's layout and
parsing are :mod:`strongroom.crypto.blob_header`'s (its names are this module's too).
"""

from __future__ import annotations

from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.crypto.blob_header import (
    BLOB_VERSION,
    ENCODED_HEADERS,
    MAX_KEY_ID_BYTES,
    MAX_USER_ID_BYTES,
    SALT_BYTES,
    BlobHeader,
    BlobKind,
    HeaderCache,
    InvalidBlob,
    encode_header,
    parse_header,
)
from strongroom.crypto.context import encode_context
from strongroom.crypto.hazmat import (
    NONCE_BYTES,
    AuthenticationFailed,
    aes_gcm_decrypt,
    aes_gcm_encrypt,
    hkdf_expand_sha256,
    random_bytes,
)

__all__ = [
    "BLOB_VERSION",
    "MAX_KEY_ID_BYTES",
    "MAX_USER_ID_BYTES",
    "SALT_BYTES",
    "BlobHeader",
    "BlobKind",
    "HeaderCache",
    "InvalidBlob",
    "MessageKeys",
    "open_blob",
    "parse_header",
    "seal",
    "seal_with",
]

_LABEL = b"strongroom/blob/v1"
_NO_CONTEXT = encode_context(None)


# "strongroom/blob/v1" || u32 len(tenant) || tenant, by tenant: how every blob of a
# tenant's keys begins its associated data. Bounded: when full, everything is forgotten.
_TENANT_AAD: dict[str, bytes] = {}
_MAX_TENANTS = 4096


def _aad_prefix(tenant: str) -> bytes:
    prefix = _TENANT_AAD.get(tenant)
    if prefix is None:
        name = tenant.encode("utf-8")
        prefix = _LABEL + len(name).to_bytes(4, "big") + name
        if len(_TENANT_AAD) >= _MAX_TENANTS:
            _TENANT_AAD.clear()
        _TENANT_AAD[tenant] = prefix
    return prefix


def _aad(tenant: str, header: bytes, context: Mapping[str, str] | None) -> bytes:
    # "strongroom/blob/v1" || u32 len(tenant) || tenant || header || context
    return b"".join(
        (
            _TENANT_AAD.get(tenant) or _aad_prefix(tenant),
            header,
            encode_context(context) if context else _NO_CONTEXT,
        )
    )


class MessageKeys:
    """The per-message keys of one version's material, derived without repeating setup.

    A message key is ``HKDF-Expand(material, "strongroom/blob/v1" || salt)`` for 32 bytes:
    one block, ``HMAC-SHA256(material, info || 0x01)`` (RFC 5869, section 2.3). This
    keeps the HMAC keyed once, with the label (every info's first bytes) already fed to it,
    and copies it per message, which costs about half of setting up HKDF-Expand each
    time. Pass it to :func:`seal` and :func:`open_blob` in place of the material, or call
    its :meth:`seal` and :meth:`open` (the same, in one frame); it never shows the material.
    """

    __slots__ = ("_hmac",)

    def __init__(self, material: bytes) -> None:
        mac = hmac.HMAC(material, hashes.SHA256())
        mac.update(_LABEL)
        self._hmac = mac

    def __repr__(self) -> str:
        return "MessageKeys(<hidden>)"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("message keys hold key material and cannot be pickled")

    def message_key(self, salt: bytes) -> bytes:
        """The key of the message with ``salt``."""
        mac = self._hmac.copy()
        mac.update(salt + b"\x01")
        return mac.finalize()

    def seal(
        self,
        tenant: str,
        header: BlobHeader,
        plaintext: bytes,
        context: Mapping[str, str] | None = None,
    ) -> bytes:
        """:func:`seal` under this material: a fresh random salt and nonce, in one call."""
        if header.kind is BlobKind.KEY and header.user_id is None:
            return self.seal_version(tenant, header.key_id, header.key_version, plaintext, context)
        return self._sealed(tenant, encode_header(header), plaintext, context)

    def seal_version(
        self,
        tenant: str,
        key_id: str,
        version: int,
        plaintext: bytes,
        context: Mapping[str, str] | None = None,
    ) -> bytes:
        """:meth:`seal` with the header ``BlobHeader(key_id, version)`` (a KMS key version)."""
        # encode_header, inlined: a key version's header bytes are made once
        head = ENCODED_HEADERS.get((key_id, version))
        if head is None:
            head = encode_header(BlobHeader(key_id, version))  # checks the id and version
        return self._sealed(tenant, head, plaintext, context)

    def seal_new_key(
        self,
        tenant: str,
        key_id: str,
        version: int,
        size: int,
        context: Mapping[str, str] | None = None,
    ) -> tuple[bytes, bytes]:
        """A fresh random data key of ``size`` bytes and :meth:`seal_version` of it.

        The data key, then the blob's salt and nonce, come from one read of the CSPRNG
        (one system call instead of two; each part is as random as if read alone).
        """
        head = ENCODED_HEADERS.get((key_id, version))
        if head is None:
            head = encode_header(BlobHeader(key_id, version))  # checks the id and version
        fresh = random_bytes(size + SALT_BYTES + NONCE_BYTES)
        data_key = fresh[:size]
        return data_key, self._sealed(tenant, head, data_key, context, fresh[size:])

    def _sealed(
        self,
        tenant: str,
        head: bytes,
        plaintext: bytes,
        context: Mapping[str, str] | None,
        fresh: bytes | None = None,
    ) -> bytes:
        if fresh is None:
            fresh = random_bytes(SALT_BYTES + NONCE_BYTES)  # the salt, then the nonce
        mac = self._hmac.copy()
        mac.update(fresh[:SALT_BYTES] + b"\x01")
        aad = b"".join(
            (
                _TENANT_AAD.get(tenant) or _aad_prefix(tenant),
                head,
                encode_context(context) if context else _NO_CONTEXT,
            )
        )
        sealed = AESGCM(mac.finalize()).encrypt(fresh[SALT_BYTES:], plaintext, aad)
        return b"".join((head, fresh, sealed))

    def open(
        self,
        tenant: str,
        blob: bytes,
        header_end: int,
        context: Mapping[str, str] | None = None,
    ) -> bytes:
        """:func:`open_blob` under this material, ``header_end`` given; raises :class:`InvalidBlob`.

        ``header_end`` is the offset :func:`parse_header` returned for this same blob; a
        wrong value only makes authentication fail.
        """
        salt_end = header_end + SALT_BYTES
        nonce_end = salt_end + NONCE_BYTES
        mac = self._hmac.copy()
        mac.update(blob[header_end:salt_end] + b"\x01")
        aad = b"".join(
            (
                _TENANT_AAD.get(tenant) or _aad_prefix(tenant),
                blob[:header_end],
                encode_context(context) if context else _NO_CONTEXT,
            )
        )
        try:
            return AESGCM(mac.finalize()).decrypt(blob[salt_end:nonce_end], blob[nonce_end:], aad)
        except (InvalidTag, ValueError) as exc:
            raise InvalidBlob from exc


def _message_key(material: bytes | MessageKeys, salt: bytes) -> bytes:
    if isinstance(material, MessageKeys):
        return material.message_key(salt)
    return hkdf_expand_sha256(material, _LABEL + salt)


def seal(
    material: bytes | MessageKeys,
    tenant: str,
    header: BlobHeader,
    plaintext: bytes,
    context: Mapping[str, str] | None = None,
) -> bytes:
    """Encrypt ``plaintext`` under ``material`` (or its :class:`MessageKeys`) into a blob.

    The salt and the nonce are both fresh random bytes, read from the CSPRNG in one call.
    """
    if type(material) is MessageKeys:
        return material.seal(tenant, header, plaintext, context)
    fresh = random_bytes(SALT_BYTES + NONCE_BYTES)
    salt, nonce = fresh[:SALT_BYTES], fresh[SALT_BYTES:]
    return _sealed(material, tenant, encode_header(header), plaintext, context, salt, nonce)


def seal_with(
    material: bytes | MessageKeys,
    tenant: str,
    header: BlobHeader,
    plaintext: bytes,
    context: Mapping[str, str] | None,
    salt: bytes,
    nonce: bytes,
) -> bytes:
    """Like :func:`seal` with the salt and nonce given: for test vectors only."""
    return _sealed(material, tenant, header.encode(), plaintext, context, salt, nonce)


def _sealed(
    material: bytes | MessageKeys,
    tenant: str,
    head: bytes,
    plaintext: bytes,
    context: Mapping[str, str] | None,
    salt: bytes,
    nonce: bytes,
) -> bytes:
    """The blob: ``head``, salt and nonce, then AES-256-GCM under the message's key."""
    # _message_key, inlined: every Encrypt and data key comes here
    if type(material) is MessageKeys:
        key = material.message_key(salt)
    else:
        key = _message_key(material, salt)
    sealed = aes_gcm_encrypt(key, nonce, plaintext, _aad(tenant, head, context))
    return b"".join((head, salt, nonce, sealed))


def open_blob(
    material: bytes | MessageKeys,
    tenant: str,
    blob: bytes,
    context: Mapping[str, str] | None = None,
    header_end: int | None = None,
) -> bytes:
    """Decrypt a blob whose header names ``material``'s key; raises :class:`InvalidBlob`.

    ``material`` may be given as its :class:`MessageKeys`. ``header_end`` is the offset
    :func:`parse_header` returned for this same blob, when the caller parsed it already; a
    wrong value only makes authentication fail.
    """
    offset = parse_header(blob)[1] if header_end is None else header_end
    if type(material) is MessageKeys:
        return material.open(tenant, blob, offset, context)
    salt = blob[offset : offset + SALT_BYTES]
    nonce = blob[offset + SALT_BYTES : offset + SALT_BYTES + NONCE_BYTES]
    sealed = blob[offset + SALT_BYTES + NONCE_BYTES :]
    # _message_key, inlined: every Decrypt comes here
    if type(material) is MessageKeys:
        key = material.message_key(salt)
    else:
        key = _message_key(material, salt)
    try:
        return aes_gcm_decrypt(key, nonce, sealed, _aad(tenant, blob[:offset], context))
    except AuthenticationFailed as exc:
        raise InvalidBlob from exc
