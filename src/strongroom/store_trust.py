"""What a data directory remembers about its key store's MAC key, and the store opened with it.

Every record of a key store is authenticated (:mod:`strongroom.ports.sealed_store`) under
a MAC key kept, wrapped by the root of trust, in the store itself. A store that has no
such key is sealed on first open, trusting its rows as they are, which is right once (a
new store, or a store of an earlier Strongroom) and wrong ever after: someone with write
access to the database could delete the key row and put in rows of their choosing. So the
data directory, which the database cannot write, keeps ``store-mac.json``: for each store
URL (password removed), the public id of the MAC key it was sealed with. A store the
directory knows as sealed is opened only with that very key.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from strongroom.files import atomic_write
from strongroom.kms.upgrades import upgrade_record
from strongroom.ports import RootOfTrust, Store
from strongroom.ports.sealed_store import seal_store, secrets_of_store

MARKER_FILE = "store-mac.json"
_FORMAT = 1


def _store_id(store_url: str) -> str:
    """``store_url`` without a password (the marker file holds no secret)."""
    if "://" not in store_url:
        return store_url
    parts = urlsplit(store_url)
    if parts.password is None:
        return store_url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}@{host}"))


def _known(data_dir: Path) -> dict[str, str]:
    try:
        data = json.loads((data_dir / MARKER_FILE).read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        from strongroom.errors import ValidationError

        raise ValidationError(f"{data_dir / MARKER_FILE} is unreadable: {exc}") from exc
    stores = data.get("stores") if isinstance(data, dict) else None
    if not isinstance(stores, dict):
        return {}
    return {str(k): str(v) for k, v in stores.items()}


def seal_for_data_dir(store: Store, root: RootOfTrust, data_dir: Path, store_url: str) -> Store:
    """Seal ``store`` (see :func:`seal_store`), holding it to the key ``data_dir`` remembers."""
    known = _known(data_dir)
    name = _store_id(store_url)
    sealed = seal_store(store, root, upgrade=upgrade_record, expected_key_id=known.get(name))
    secrets = secrets_of_store(sealed)
    if secrets is not None and known.get(name) != secrets.key_id and data_dir.is_dir():
        known[name] = secrets.key_id
        body = {"format": _FORMAT, "stores": known}
        try:
            with atomic_write(data_dir / MARKER_FILE, f".{MARKER_FILE}.") as sink:
                sink.write(json.dumps(body, indent=2, sort_keys=True).encode() + b"\n")
        except OSError:
            pass  # a read-only data directory: the store is sealed all the same
    return sealed
