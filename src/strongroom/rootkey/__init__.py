"""Roots of trust: a PKCS#11 HSM, or a local master key file for development.

:func:`open_root_of_trust` turns the one configuration string (``local`` or a
``pkcs11:`` URI) into a :class:`~strongroom.ports.RootOfTrust`.
"""

from strongroom.rootkey.factory import MASTER_KEY_FILE, open_root_of_trust
from strongroom.rootkey.local import LocalRootOfTrust
from strongroom.rootkey.pkcs11 import PIN_ENV, Pkcs11RootOfTrust
from strongroom.rootkey.pkcs11_uri import Pkcs11Uri, parse_pkcs11_uri

__all__ = [
    "MASTER_KEY_FILE",
    "PIN_ENV",
    "LocalRootOfTrust",
    "Pkcs11RootOfTrust",
    "Pkcs11Uri",
    "open_root_of_trust",
    "parse_pkcs11_uri",
]
