"""Authenticated store rows: the MAC format every record of the key store carries.

A DB-only attacker (write access to SQLite or PostgreSQL, nothing else) must not be able
to grant themselves anything by editing a row: a policy, a principal's flags, a grant, an
alias, a key's state. So every stored value is sealed as::

    sealed = 0x01 || tag(32) || value
    tag    = HMAC-SHA256(K_rows, "strongroom/row/v1" || lp(part_1) || ... || lp(part_n) || value)

where the parts are the row's identity (``tenant``, ``kind``, ``name`` today; a part may
be added, e.g. a region, without changing anything else) and ``lp(x) = u32(len x) || x``.
Binding the identity means a row's content moved under another name, kind or tenant
(two rows swapped) does not verify. ``K_rows`` and the other sub-keys come from one
32-byte master key with HKDF-SHA256 (:class:`StoreSecrets`); the master key is generated
once per store, kept wrapped by the root of trust, unwrapped at start.

The format is specified in ``docs/formats.md`` ("Sealed store rows"), with vectors in
``tests/vectors/row_mac_v1.json``.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Sequence

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from strongroom.errors import TamperedRecordError

ROW_FORMAT = 1
"""The version byte of a sealed row."""
TAG_BYTES = 32
MASTER_KEY_BYTES = 32
_HEAD = bytes([ROW_FORMAT])
_LABEL = b"strongroom/row/v1"
_ROWS_INFO = b"strongroom/store-mac/v1/rows"
_SECRETS_INFO = b"strongroom/store-mac/v1/secret/"
_ID_INFO = b"strongroom/store-mac/v1/id"
_REMEMBERED = 4096  # verified rows remembered per store
_REMEMBER_BYTES = 4096  # only rows up to this size (most key, alias, principal, grant records)


def _derive(master: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master)


def identity_bytes(identity: Sequence[str]) -> bytes:
    """The label and the length-prefixed UTF-8 parts of a row's identity."""
    out = bytearray(_LABEL)
    for part in identity:
        raw = part.encode("utf-8")
        out += struct.pack(">I", len(raw))
        out += raw
    return bytes(out)


class StoreSecrets:
    """The keys derived from one store's master MAC key (never shown, never logged).

    :meth:`seal` and :meth:`open` are the row format; :meth:`digest` gives other parts of
    Strongroom keyed hashes of their own (grant token keys) under a purpose label, so no
    secret they need has to be stored in the database.
    """

    __slots__ = ("_key_id", "_master", "_rows", "_verified")

    def __init__(self, master: bytes) -> None:
        if len(master) != MASTER_KEY_BYTES:
            raise ValueError("a store MAC key is 32 bytes")
        self._master = master
        self._rows = _derive(master, _ROWS_INFO)
        self._key_id = _derive(master, _ID_INFO)[:8].hex()
        # identity -> stored bytes that verified: the same bytes read again need no HMAC
        # (a hot record read on every call costs a dict lookup and a compare)
        self._verified: dict[tuple[str, ...], bytes] = {}

    def __repr__(self) -> str:
        return f"StoreSecrets(key_id={self._key_id})"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("store secrets cannot be pickled")

    @property
    def key_id(self) -> str:
        """A public, stable name of this key (16 hex digits): which key sealed a store."""
        return self._key_id

    def tag(self, identity: Sequence[str], value: bytes) -> bytes:
        """The 32-byte tag of ``value`` stored under ``identity``."""
        return hmac.digest(self._rows, identity_bytes(identity) + value, hashlib.sha256)

    def seal(self, identity: Sequence[str], value: bytes) -> bytes:
        """``value`` as stored: version byte, tag, value."""
        return _HEAD + self.tag(identity, value) + value

    def open(self, identity: Sequence[str], stored: bytes) -> bytes:
        """The value of a stored row, or :class:`TamperedRecordError` if it does not verify."""
        key = tuple(identity)
        if self._verified.get(key) == stored:
            return stored[1 + TAG_BYTES :]
        if len(stored) < 1 + TAG_BYTES or stored[0] != ROW_FORMAT:
            raise tampered(identity)
        value = stored[1 + TAG_BYTES :]
        if not hmac.compare_digest(self.tag(identity, value), stored[1 : 1 + TAG_BYTES]):
            raise tampered(identity)
        if len(value) <= _REMEMBER_BYTES:
            if len(self._verified) >= _REMEMBERED:
                self._verified.clear()  # bounded; the hot rows come back at once
            self._verified[key] = stored
        return value

    def purpose_key(self, purpose: str) -> bytes:
        """A 32-byte key for ``purpose`` (e.g. ``"grant-token"``), independent of the others."""
        return _derive(self._master, _SECRETS_INFO + purpose.encode("ascii"))


def tampered(identity: Sequence[str]) -> TamperedRecordError:
    """The error for a row that does not authenticate.

    The message names the kind of record only (a client may see it); :attr:`record` names
    the whole row for the server's log.
    """
    kind = identity[1] if len(identity) > 1 else "?"
    error = TamperedRecordError(
        f"A key store record ({kind}) does not authenticate: it was changed outside "
        "Strongroom, so it is refused, not used. See docs/operations.md, Trusted metadata."
    )
    error.record = "/".join(identity)
    return error
