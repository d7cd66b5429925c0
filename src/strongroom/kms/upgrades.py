"""Records of earlier Strongroom versions, rewritten once as the store is first sealed.

:func:`upgrade_record` is the ``upgrade`` hook of
:func:`strongroom.ports.sealed_store.seal_store`: it sees every record of a store being
sealed for the first time and returns the bytes to seal. Grant records lose the
``token_secret`` they used to keep in clear (grant token keys are now derived from the
store's secret, so tokens issued before the upgrade stop working; the grants themselves
keep working).
"""

from __future__ import annotations

from strongroom.kms.authz.grants import GrantRecord


def upgrade_record(tenant: str, kind: str, name: str, value: bytes) -> bytes:
    """The record ``value`` in today's format (unchanged for most kinds)."""
    if kind == "grant" and b'"token_secret"' in value:
        return GrantRecord.from_bytes(value).to_bytes()
    return value
