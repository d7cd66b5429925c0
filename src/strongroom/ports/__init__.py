"""The edges the key service kernel is given, and what they share with it.

The kernel does no I/O of its own. Whoever builds a :class:`~strongroom.kms.KeyService`
hands it one object of each protocol here: a :class:`Store` (``strongroom.store``), a
:class:`RootOfTrust` (``strongroom.rootkey``) and a :class:`Clock`. The edges import this
package, never the service: importing ``strongroom.store`` loads no key-service code.
"""

from strongroom.ports.audit_chain import GENESIS_HASH, ChainBroken, chain_hash, verify_chain
from strongroom.ports.clock import Clock, ManualClock, SystemClock
from strongroom.ports.root import RootOfTrust
from strongroom.ports.store import GLOBAL_TENANT, AuditRecord, Store, StoreTx

__all__ = [
    "GENESIS_HASH",
    "GLOBAL_TENANT",
    "AuditRecord",
    "ChainBroken",
    "Clock",
    "ManualClock",
    "RootOfTrust",
    "Store",
    "StoreTx",
    "SystemClock",
    "chain_hash",
    "verify_chain",
]
