"""The key service kernel (pure domain): tenants, keys, versions, aliases, grants, user keys.

Construct a :class:`KeyService` with a store, a root of trust and a clock (see
:mod:`strongroom.ports`) and call operations through :meth:`KeyService.call`. The names
below are loaded on first use, so importing one module of this package (a record format,
say) does not load the whole service.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from strongroom.kms.caller import AccessKey, Caller
    from strongroom.kms.service import KeyService
    from strongroom.ports import Clock, ManualClock, RootOfTrust, Store, StoreTx, SystemClock

_HOMES = {
    "AccessKey": "strongroom.kms.caller",
    "Caller": "strongroom.kms.caller",
    "KeyService": "strongroom.kms.service",
    "Clock": "strongroom.ports",
    "ManualClock": "strongroom.ports",
    "RootOfTrust": "strongroom.ports",
    "Store": "strongroom.ports",
    "StoreTx": "strongroom.ports",
    "SystemClock": "strongroom.ports",
}

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


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'strongroom.kms' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
