"""The audit chain, re-exported from :mod:`strongroom.ports.audit_chain` (its home).

The store computes the chain as it appends, so the chain lives with the ports.
"""

from strongroom.ports.audit_chain import GENESIS_HASH, ChainBroken, chain_hash, verify_chain

__all__ = ["GENESIS_HASH", "ChainBroken", "chain_hash", "verify_chain"]
