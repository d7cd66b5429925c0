"""The import token, version 1: GetParametersForImport hands it out, ImportKeyMaterial takes it.

The token carries the RSA wrapping private key, so the service keeps no state between the
two calls. Layout (integers big-endian)::

    u8  version = 0x01
    u8  len(key_id)         1..64, then key_id (ASCII)
    u8  wrapping algorithm  1 RSAES_OAEP_SHA_1, 2 RSAES_OAEP_SHA_256,
                            3 RSA_AES_KEY_WRAP_SHA_1, 4 RSA_AES_KEY_WRAP_SHA_256
    u16 wrapping key bits   2048, 3072 or 4096
    u64 valid until         milliseconds since the Unix epoch
    ..  wrapped key         the wrapping private key (DER PKCS #8) as a wrapped key
                            (``strongroom.crypto.wrap``) under the tenant KEK

The wrapped key's identity is ``("importtoken", tenant, hex(header))`` where ``header`` is
every byte before it, so the tenant, key id, algorithm, key size and expiry are all
authenticated by AES-256-GCM: a token does not open for another tenant, and no byte of it
can be changed. Every way a token can be bad is one :class:`InvalidImportTokenError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from strongroom.crypto.hazmat import NONCE_BYTES, random_bytes
from strongroom.crypto.wrap import UnwrapFailed, key_identity, unwrap_key, wrap_key_with
from strongroom.errors import InvalidImportTokenError

TOKEN_VERSION = 1
MAX_KEY_ID_BYTES = 64

WRAPPING_ALGORITHMS: dict[str, int] = {
    "RSAES_OAEP_SHA_1": 1,
    "RSAES_OAEP_SHA_256": 2,
    "RSA_AES_KEY_WRAP_SHA_1": 3,
    "RSA_AES_KEY_WRAP_SHA_256": 4,
}
"""The wrapping algorithms Strongroom offers and their code in the token."""

WRAPPING_KEY_BITS: dict[str, int] = {"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}
"""The WrappingKeySpec values Strongroom offers."""

_ALGORITHM_NAMES = {code: name for name, code in WRAPPING_ALGORITHMS.items()}
_FIXED = struct.Struct(">BHQ")


@dataclass(frozen=True, slots=True)
class ImportTokenHeader:
    """The public, authenticated part of an import token."""

    key_id: str
    wrapping_algorithm: str
    key_bits: int
    valid_to_ms: int

    def encode(self) -> bytes:
        """Return the header bytes (everything before the wrapped key)."""
        key_id = self.key_id.encode("ascii")
        if not 1 <= len(key_id) <= MAX_KEY_ID_BYTES:
            raise ValueError("key id length out of range")
        if self.key_bits not in WRAPPING_KEY_BITS.values():
            raise ValueError("unsupported wrapping key size")
        if not 0 <= self.valid_to_ms < 1 << 64:
            raise ValueError("expiry out of range")
        return (
            bytes((TOKEN_VERSION, len(key_id)))
            + key_id
            + _FIXED.pack(
                WRAPPING_ALGORITHMS[self.wrapping_algorithm], self.key_bits, self.valid_to_ms
            )
        )


def _identity(tenant: str, header: bytes) -> bytes:
    return key_identity("importtoken", tenant, header.hex())


def parse_token_header(token: bytes) -> tuple[ImportTokenHeader, int]:
    """Parse the header of ``token``; return it and the offset of the wrapped key."""
    if len(token) < 2 or token[0] != TOKEN_VERSION:
        raise InvalidImportTokenError("The import token is not valid.")
    id_len = token[1]
    offset = 2 + id_len
    if not 1 <= id_len <= MAX_KEY_ID_BYTES or len(token) < offset + _FIXED.size:
        raise InvalidImportTokenError("The import token is not valid.")
    try:
        key_id = token[2:offset].decode("ascii")
    except UnicodeDecodeError as exc:
        raise InvalidImportTokenError("The import token is not valid.") from exc
    code, bits, valid_to_ms = _FIXED.unpack_from(token, offset)
    if code not in _ALGORITHM_NAMES or bits not in WRAPPING_KEY_BITS.values():
        raise InvalidImportTokenError("The import token is not valid.")
    header = ImportTokenHeader(key_id, _ALGORITHM_NAMES[code], bits, valid_to_ms)
    return header, offset + _FIXED.size


def seal_token(kek: bytes, tenant: str, header: ImportTokenHeader, private_der: bytes) -> bytes:
    """Build a token: ``header`` and the wrapping private key wrapped under ``kek``."""
    return seal_token_with(kek, tenant, header, private_der, random_bytes(NONCE_BYTES))


def seal_token_with(
    kek: bytes, tenant: str, header: ImportTokenHeader, private_der: bytes, nonce: bytes
) -> bytes:
    """Like :func:`seal_token` with the nonce given: for test vectors only."""
    head = header.encode()
    return head + wrap_key_with(kek, private_der, _identity(tenant, head), nonce)


def open_token(kek: bytes, tenant: str, token: bytes) -> tuple[ImportTokenHeader, bytes]:
    """Authenticate a token of ``tenant``; return its header and the wrapping private key.

    Raises :class:`InvalidImportTokenError` if the token is malformed, was issued to
    another tenant or under another KEK, or was changed in any byte. The expiry is not
    checked here: the caller compares ``valid_to_ms`` with its clock.
    """
    header, offset = parse_token_header(token)
    try:
        private_der = unwrap_key(kek, token[offset:], _identity(tenant, token[:offset]))
    except UnwrapFailed as exc:
        raise InvalidImportTokenError("The import token is not valid.") from exc
    return header, private_der
