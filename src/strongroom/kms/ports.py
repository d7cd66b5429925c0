"""The ports of the key service, re-exported from :mod:`strongroom.ports` (their home).

Kept so that code written against ``strongroom.kms.ports`` goes on working; new code
imports :mod:`strongroom.ports`, which loads no key-service code.
"""

from strongroom.ports import (
    AuditRecord,
    Clock,
    ManualClock,
    RootOfTrust,
    Store,
    StoreTx,
    SystemClock,
)

__all__ = [
    "AuditRecord",
    "Clock",
    "ManualClock",
    "RootOfTrust",
    "Store",
    "StoreTx",
    "SystemClock",
]
