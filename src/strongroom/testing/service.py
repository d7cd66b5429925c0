"""Build a key service for tests and applications' own test suites."""

from __future__ import annotations

from strongroom.kms.caller import Caller
from strongroom.kms.ports import Clock, RootOfTrust, Store
from strongroom.kms.service import KeyService


def tenant_caller(service: KeyService, name: str, region: str = "us-east-1") -> Caller:
    """Create a tenant named ``name`` with one access key and return its caller."""
    tenant = service.create_tenant(name)
    principal, _ = service.create_access_key(tenant.account_id)
    access = service.lookup_access_key(principal.access_key_id, region)
    if access is None:
        raise RuntimeError("a just-created access key was not found")
    return access.caller


def new_service(store: Store, root: RootOfTrust, clock: Clock) -> KeyService:
    """Return a key service over the given edges."""
    return KeyService(store, root, clock)
