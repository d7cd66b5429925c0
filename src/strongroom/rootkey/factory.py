"""Choose and open the root of trust from its configuration string."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from strongroom.errors import ValidationError
from strongroom.rootkey.local import LocalRootOfTrust
from strongroom.rootkey.pkcs11 import Pkcs11RootOfTrust
from strongroom.rootkey.pkcs11_uri import is_pkcs11_uri

if TYPE_CHECKING:
    from strongroom.ports import RootOfTrust

MASTER_KEY_FILE = "master.key"
"""Name of the local master key file inside the data directory."""


def open_root_of_trust(spec: str, data_dir: Path, create: bool = False) -> RootOfTrust:
    """Open the root of trust ``spec`` names.

    ``local`` is the master key file ``data_dir / "master.key"``; a ``pkcs11:`` URI is a
    key in an HSM. With ``create=True`` the root key is made if it does not exist yet
    (an existing one is used, never replaced); without it, a missing key is an error.
    """
    if spec == "local":
        path = Path(data_dir) / MASTER_KEY_FILE
        if create and not path.exists():
            return LocalRootOfTrust.create(path)
        return LocalRootOfTrust.load(path)
    if is_pkcs11_uri(spec):
        return Pkcs11RootOfTrust.from_uri(spec, create=create)
    raise ValidationError(
        "the root of trust must be 'local' or a PKCS#11 URI "
        "('pkcs11:token=...;object=...?module-path=...')"
    )
