r"""Reading a LUKS2 header: the binary header, its checksum, the JSON metadata, the UUID.

Strongroom writes LUKS2 metadata only through ``cryptsetup``; it reads it here, in
Python, because that costs no process start on the unlock path (``strongroom volume
pass`` and ``unlock`` read the token before each KMS call). The layout is the one of the
LUKS2 on-disk format specification (and ``lib/luks2/luks2.h`` of cryptsetup): two copies
of a header, each ``hdr_size`` bytes long, the first 4096 a binary header (big-endian)::

    0    magic[6]       "LUKS\xba\xbe" (primary) or "SKUL\xba\xbe" (secondary)
    6    version u16    2 (1 is LUKS1, refused with a clear message)
    8    hdr_size u64   binary header + JSON area, 16 KiB to 4 MiB
    16   seqid u64      increased on every update; the valid copy with the higher wins
    72   csum_alg[32]   "sha256" (a NUL-terminated hash name)
    168  uuid[40]       the volume's UUID, NUL-terminated
    256  hdr_offset u64 where this copy lives
    448  csum[64]       digest of the whole ``hdr_size`` bytes with this field zeroed

and the JSON metadata from byte 4096, NUL-terminated. A copy whose checksum does not hold
is ignored, as cryptsetup ignores it; if neither holds the device is reported damaged.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct

from strongroom.errors import ValidationError

TYPE_CHECKING = False  # not typing's: this module is on the fast `volume pass` path
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

LUKS_MAGIC = b"LUKS\xba\xbe"
SECONDARY_MAGIC = b"SKUL\xba\xbe"
BINARY_HEADER_SIZE = 4096
MIN_HEADER_SIZE = 16 * 1024
MAX_HEADER_SIZE = 4 * 1024 * 1024
SECONDARY_OFFSETS = (0x4000, 0x8000, 0x10000, 0x20000, 0x40000, 0x80000, 0x100000, 0x200000)
"""Where a secondary header may sit when the primary is unreadable (cryptsetup's list)."""
CSUM_OFFSET = 448
CSUM_SIZE = 64
_FIXED = struct.Struct(">6sHQQ48s32s64s40s48sQ")


class Luks2Header:
    """The metadata of a LUKS2 device: UUID, sequence id and the parsed JSON area.

    A plain slotted class, not a dataclass: creating dataclasses at import costs the fast
    unlock path several milliseconds.
    """

    __slots__ = ("metadata", "seqid", "size", "uuid")

    def __init__(self, uuid: str, seqid: int, size: int, metadata: dict[str, Any]) -> None:
        self.uuid = uuid
        self.seqid = seqid
        self.size = size
        self.metadata = metadata

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Luks2Header):
            return NotImplemented
        mine = (self.uuid, self.seqid, self.size, self.metadata)
        return mine == (other.uuid, other.seqid, other.size, other.metadata)

    __hash__ = None  # type: ignore[assignment]  # mutable metadata

    def __repr__(self) -> str:
        return f"Luks2Header(uuid={self.uuid!r}, seqid={self.seqid})"

    @property
    def tokens(self) -> dict[int, dict[str, Any]]:
        """The tokens by id."""
        tokens = self.metadata.get("tokens") or {}
        return {int(k): dict(v) for k, v in tokens.items()}

    @property
    def keyslots(self) -> list[int]:
        """The ids of the keyslots in use, ascending."""
        return sorted(int(k) for k in (self.metadata.get("keyslots") or {}))

    def free_token_id(self, limit: int = 32) -> int:
        """The lowest token id not in use (LUKS2 has 32)."""
        used = set(self.tokens)
        for token_id in range(limit):
            if token_id not in used:
                return token_id
        raise ValidationError("Every token of this LUKS2 device is in use.")

    def keyslot_salt(self, slot: int) -> str:
        """The KDF salt of keyslot ``slot`` as the JSON holds it (base64), ``""`` if none.

        cryptsetup draws a new salt whenever it writes a keyslot (``luksChangeKey``,
        ``luksConvertKey``, a wipe and re-add), so it names this keyslot's current content.
        """
        slot_obj = (self.metadata.get("keyslots") or {}).get(str(slot))
        kdf = slot_obj.get("kdf") if isinstance(slot_obj, dict) else None
        salt = kdf.get("salt") if isinstance(kdf, dict) else None
        return salt if isinstance(salt, str) else ""

    def free_keyslot(self, limit: int = 32) -> int:
        """The lowest keyslot id not in use (LUKS2 has 32)."""
        used = set(self.keyslots)
        for slot in range(limit):
            if slot not in used:
                return slot
        raise ValidationError("Every keyslot of this LUKS2 device is in use.")


def _cstring(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("ascii", "replace")


def parse_copy(data: bytes, expect_magic: bytes) -> Luks2Header | None:
    """One header copy from its bytes, or ``None`` if it is not a valid LUKS2 copy.

    ``data`` holds at least the copy's ``hdr_size`` bytes. The checksum must match and
    the JSON area must hold a JSON object.
    """
    if len(data) < BINARY_HEADER_SIZE:
        return None
    fields = _FIXED.unpack_from(data)
    magic, version, size, seqid, _label, alg, _salt, uuid, _sub, _offset = fields
    if magic != expect_magic or version != 2:
        return None
    if not MIN_HEADER_SIZE <= size <= MAX_HEADER_SIZE or size % 4096 or len(data) < size:
        return None
    name = _cstring(alg).lower()
    if name not in {"sha256", "sha512", "sha1"}:
        return None
    copy = bytearray(data[:size])
    stored = bytes(copy[CSUM_OFFSET : CSUM_OFFSET + CSUM_SIZE])
    copy[CSUM_OFFSET : CSUM_OFFSET + CSUM_SIZE] = bytes(CSUM_SIZE)
    digest = hashlib.new(name, copy).digest()
    if stored[: len(digest)] != digest:
        return None
    area = bytes(copy[BINARY_HEADER_SIZE:size]).split(b"\0", 1)[0]
    try:
        metadata = json.loads(area)
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(metadata, dict):
        return None
    return Luks2Header(_cstring(uuid), seqid, size, metadata)


def parse_header(read: Callable[[int, int], bytes], where: str) -> Luks2Header:
    """The current LUKS2 header of a device, given ``read(offset, size) -> bytes``.

    Raises :class:`~strongroom.errors.ValidationError` naming ``where`` when the device is
    not LUKS, is LUKS1, or has no valid header copy.
    """
    first = read(0, BINARY_HEADER_SIZE)
    if len(first) < 8 or first[:6] != LUKS_MAGIC:
        raise ValidationError(f"{where}: not a LUKS device (no LUKS header).")
    version = struct.unpack_from(">H", first, 6)[0]
    if version == 1:
        raise ValidationError(
            f"{where}: a LUKS1 device; Strongroom keeps its token in LUKS2 metadata "
            "(convert it with `cryptsetup convert --type luks2`)."
        )
    if version != 2:
        raise ValidationError(f"{where}: LUKS version {version} is not supported.")
    candidates: list[Luks2Header] = []
    size = struct.unpack_from(">Q", first, 8)[0]
    primary = None
    if MIN_HEADER_SIZE <= size <= MAX_HEADER_SIZE:
        primary = parse_copy(read(0, size), LUKS_MAGIC)
    if primary is not None:
        candidates.append(primary)
        offsets: tuple[int, ...] = (primary.size,)
    else:
        offsets = SECONDARY_OFFSETS
    for offset in offsets:
        head = read(offset, BINARY_HEADER_SIZE)
        if head[:6] != SECONDARY_MAGIC or len(head) < 16:
            continue
        second_size = struct.unpack_from(">Q", head, 8)[0]
        if MIN_HEADER_SIZE <= second_size <= MAX_HEADER_SIZE:
            secondary = parse_copy(read(offset, second_size), SECONDARY_MAGIC)
            if secondary is not None:
                candidates.append(secondary)
                break
    if not candidates:
        raise ValidationError(
            f"{where}: the LUKS2 header is damaged (no copy checks out); see `cryptsetup repair`."
        )
    return max(candidates, key=lambda header: header.seqid)


def read_header(device: str | os.PathLike[str]) -> Luks2Header:
    """The current LUKS2 header of a block device or image file (see :func:`parse_header`)."""
    where = os.fspath(device)
    with open(device, "rb", buffering=0) as handle:

        def read(offset: int, size: int) -> bytes:
            return os.pread(handle.fileno(), size, offset)

        return parse_header(read, where)
