"""One deployment's key service, built in one place: :func:`open_service`.

The server's workers, every CLI command and ``strongroom init`` build the service of a
data directory here, from its :class:`~strongroom.config.DataDirConfig`: the key store the
configuration names, its root of trust, the system clock and the standard authoriser.
Nothing else constructs a production :class:`~strongroom.kms.KeyService`.
"""

from __future__ import annotations

from pathlib import Path

from strongroom.config import DataDirConfig
from strongroom.kms import KeyService
from strongroom.ports import Clock, SystemClock
from strongroom.rootkey import open_root_of_trust
from strongroom.store import open_store
from strongroom.store_trust import seal_for_data_dir


def open_service(
    config: DataDirConfig,
    data_dir: Path,
    *,
    clock: Clock | None = None,
    create_root: bool = False,
) -> KeyService:
    """Open the store and root of trust ``config`` names and build the key service on them.

    ``data_dir`` holds the local master key (root of trust ``local``). With
    ``create_root`` a missing root key is made (``strongroom init``); an existing one is
    used, never replaced. The caller closes the service (:meth:`KeyService.close` flushes
    the audit buffer and releases both).
    """
    store = open_store(config.store_url)
    try:
        root = open_root_of_trust(config.root_of_trust, data_dir, create=create_root)
    except BaseException:
        store.close()
        raise
    try:
        sealed = seal_for_data_dir(store, root, data_dir, config.store_url)
    except BaseException:
        store.close()
        root.close()
        raise
    return KeyService(sealed, root, clock if clock is not None else SystemClock())
