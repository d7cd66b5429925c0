"""The data directory of a Strongroom deployment and its ``config.json``.

A data directory (mode 0700) holds ``config.json`` (mode 0600), naming the key store URL
and the root of trust, and, with the local root of trust, the master key file
``master.key``. With the default store it also holds the SQLite file ``strongroom.db``.
Which directory: the ``--data-dir`` option, else ``$STRONGROOM_DATA_DIR``, else
``./.strongroom``. Nothing here runs at import time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strongroom.errors import ValidationError
from strongroom.files import fsync_dir

CONFIG_FILE = "config.json"
"""Name of the configuration file inside the data directory."""
DATA_DIR_ENV = "STRONGROOM_DATA_DIR"
"""Environment variable naming the data directory."""
DEFAULT_DATA_DIR = ".strongroom"
"""Data directory used when neither the option nor the environment names one."""
SQLITE_FILE = "strongroom.db"
"""Name of the default SQLite key store inside the data directory."""
CONFIG_VERSION = 1


def resolve_data_dir(option: str | Path | None, environ: Mapping[str, str]) -> Path:
    """The data directory: ``option``, else ``$STRONGROOM_DATA_DIR``, else ``./.strongroom``."""
    if option is not None and str(option):
        return Path(option)
    from_env = environ.get(DATA_DIR_ENV, "")
    return Path(from_env) if from_env else Path(DEFAULT_DATA_DIR)


def default_store_url(data_dir: Path) -> str:
    """``sqlite:///<absolute data dir>/strongroom.db``."""
    return f"sqlite:///{data_dir.resolve() / SQLITE_FILE}"


@dataclass(frozen=True, slots=True)
class DataDirConfig:
    """What ``config.json`` says: where the key store is and what the root of trust is.

    ``root_of_trust`` is ``local`` or a ``pkcs11:`` URI; ``store_url`` is anything
    :func:`strongroom.store.open_store` accepts. Either may hold a secret (a PIN, a
    database password), so the file is mode 0600 and :meth:`__repr__` shows neither.
    """

    store_url: str
    root_of_trust: str
    version: int = CONFIG_VERSION

    def __repr__(self) -> str:
        return f"DataDirConfig(version={self.version})"

    def to_json(self) -> bytes:
        """Serialise as ``config.json``."""
        data = {
            "version": self.version,
            "store_url": self.store_url,
            "root_of_trust": self.root_of_trust,
        }
        return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, raw: bytes) -> DataDirConfig:
        """Parse ``config.json``; raise ``ValidationError`` if it is not one we understand."""
        try:
            data: Any = json.loads(raw)
        except ValueError as exc:
            raise ValidationError(f"{CONFIG_FILE} is not valid JSON") from exc
        if not isinstance(data, dict):
            raise ValidationError(f"{CONFIG_FILE} must hold a JSON object")
        version = data.get("version")
        if version != CONFIG_VERSION:
            raise ValidationError(f"{CONFIG_FILE} version {version!r} is not supported")
        store_url, root = data.get("store_url"), data.get("root_of_trust")
        if not isinstance(store_url, str) or not store_url:
            raise ValidationError(f"{CONFIG_FILE} needs a 'store_url' string")
        if not isinstance(root, str) or not root:
            raise ValidationError(f"{CONFIG_FILE} needs a 'root_of_trust' string")
        return cls(store_url=store_url, root_of_trust=root, version=version)


def not_a_data_dir_message(data_dir: Path) -> str:
    """What to do when ``data_dir`` has no ``config.json``.

    The usual cause is a command run from another directory than the server's (the
    default data directory is relative to the current one): pointing it at the existing
    directory is the fix, not ``strongroom init``, which would make a second, empty one.
    """
    absolute = Path(os.path.abspath(data_dir))
    return (
        f"{absolute} is not a Strongroom data directory (no {CONFIG_FILE}). Commands use "
        f"--data-dir, else ${DATA_DIR_ENV}, else ./{DEFAULT_DATA_DIR} of the current "
        f"directory: run this where the server was started, or give --data-dir DIR (or set "
        f"{DATA_DIR_ENV}) naming the server's data directory. Only for a new, empty one: "
        f"strongroom init --data-dir {absolute}"
    )


def load_config(data_dir: Path) -> DataDirConfig:
    """Read ``config.json`` of ``data_dir``; a missing one means "not initialised"."""
    path = data_dir / CONFIG_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise ValidationError(not_a_data_dir_message(data_dir)) from exc
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror}") from exc
    return DataDirConfig.from_json(raw)


def write_config(data_dir: Path, config: DataDirConfig) -> Path:
    """Write ``config.json`` (mode 0600) atomically; refuse to replace an existing one."""
    path = data_dir / CONFIG_FILE
    tmp = data_dir / f".{CONFIG_FILE}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(config.to_json())
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path)  # fails if config.json exists: never replace a configuration
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(data_dir)
    return path
