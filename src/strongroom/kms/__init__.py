"""The key service core (pure domain): tenants, keys, versions, aliases, grants, user keys.

Construct a :class:`KeyService` with a store, a root of trust and a clock (see
:mod:`strongroom.kms.ports`) and call operations through :meth:`KeyService.call`.
"""

from strongroom.kms.caller import AccessKey, Caller
from strongroom.kms.ports import Clock, ManualClock, RootOfTrust, Store, StoreTx, SystemClock
from strongroom.kms.service import KeyService

__all__ = [
    "AccessKey",
    "Caller",
    "Clock",
    "KeyService",
    "ManualClock",
    "RootOfTrust",
    "Store",
    "StoreTx",
    "SystemClock",
]
