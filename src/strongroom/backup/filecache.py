"""The local file cache: an unchanged file (same size, mtime, ctime, inode) is not read again.

One file per repository under the cache directory, ``<repo id hex>.cache``::

    "SRBF" | version 0x01 | JSON {path: [size, mtime_ns, ctime_ns, inode, [content...]]}
    | HMAC-SHA256(cache-mac key, everything before)

The MAC (a key derived from the index secret) means a tampered cache is ignored rather
than trusted to name a file's chunks. An entry is used only if every chunk it names is
still in the index (prune may have removed some).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any

from strongroom.backup.keyring import IndexKeys
from strongroom.backup.tree import Content
from strongroom.crypto.hazmat import constant_time_equal
from strongroom.files import atomic_write

MAGIC = b"SRBF\x01"

Stamp = tuple[int, int, int, int]


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/strongroom/backup`` (``~/.cache/...`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "strongroom" / "backup"


class FileCache:
    """Stamps and contents of the files one host backed up into one repository."""

    def __init__(self, path: Path | None, keys: IndexKeys) -> None:
        self._path = path
        self._key = keys.cache_mac_key
        self._old: dict[str, Any] = {}
        self._new: dict[str, Any] = {}
        if path is not None:
            self._old = self._load(path)

    def _load(self, path: Path) -> dict[str, Any]:
        try:
            data = path.read_bytes()
        except OSError:
            return {}
        body, mac = data[:-32], data[-32:]
        expected = hmac.digest(self._key, body, hashlib.sha256)
        if not body.startswith(MAGIC) or not constant_time_equal(mac, expected):
            return {}
        try:
            loaded = json.loads(body[len(MAGIC) :])
        except ValueError:
            return {}
        return loaded if isinstance(loaded, dict) else {}

    def lookup(self, path: str, stamp: Stamp) -> Content | None:
        """The content recorded for ``path`` if its stamp is unchanged."""
        entry = self._old.get(path)
        if not isinstance(entry, list) or len(entry) != 5 or tuple(entry[:4]) != stamp:
            return None
        try:
            return [c if isinstance(c, int) else bytes.fromhex(c) for c in entry[4]]
        except (TypeError, ValueError):
            return None

    def knows(self, path: str) -> bool:
        """Whether the last runs saw ``path`` (so a miss means it changed)."""
        return path in self._old

    def record(self, path: str, stamp: Stamp, content: Content) -> None:
        """Remember ``path``'s content for the next run."""
        self._new[path] = [*stamp, [c if isinstance(c, int) else c.hex() for c in content]]

    def save(self) -> None:
        """Write the cache (old entries kept unless re-recorded); best effort."""
        if self._path is None:
            return
        merged = {**self._old, **self._new}
        body = MAGIC + json.dumps(merged, separators=(",", ":")).encode("utf-8", "surrogateescape")
        with contextlib.suppress(OSError):
            self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with atomic_write(self._path, prefix=".cache-") as sink:
                sink.write(body + hmac.digest(self._key, body, hashlib.sha256))
