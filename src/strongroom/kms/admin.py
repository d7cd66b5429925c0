"""Tenants and principals: the administrative side of the key service (not AWS operations).

A tenant is one customer, named by a 12-digit account id, with its own key-encryption key
wrapped by the root of trust. Principals are access keys (id + secret) of one tenant; the
secret is kept only wrapped by the root of trust, since SigV4 verification needs it.
"""

from __future__ import annotations

import base64
import re
import secrets
import string

from strongroom.crypto.hazmat import new_key
from strongroom.crypto.wrap import key_identity
from strongroom.errors import AlreadyExistsError, NotFoundError, ValidationError
from strongroom.kms.caller import AccessKey, Caller
from strongroom.kms.kernel import Kernel
from strongroom.kms.key_usage import mark_tracking_start
from strongroom.kms.records import GLOBAL_TENANT, PrincipalRecord, TenantRecord
from strongroom.ports import StoreTx

_ACCESS_KEY_ALPHABET = string.ascii_uppercase + "234567"
_USER_NAME = re.compile(r"[\w+=,.@-]{1,64}", re.ASCII)
RESERVED_USER_NAMES = frozenset({"root"})
"""``root`` would name the account's root principal (``arn:aws:iam::<account>:root``)."""


def check_user_name(user_name: str) -> None:
    """Refuse a user name that is not an IAM user name, or one that names the account root."""
    if not _USER_NAME.fullmatch(user_name):
        raise ValidationError(
            f"User name {user_name!r} is not valid: 1 to 64 letters, digits and +=,.@_-"
        )
    if user_name in RESERVED_USER_NAMES:
        raise ValidationError(
            f"User name {user_name!r} is reserved: it names the account's root principal, "
            "which key policies treat as the whole account. To create a tenant "
            "administrator, give another name and mark it as an administrator (--admin)."
        )


def create_tenant(k: Kernel, name: str, account_id: str | None = None) -> TenantRecord:
    """Create a tenant with a fresh KEK wrapped by the root of trust."""
    if not name or len(name) > 128:
        raise ValidationError("Tenant name must have 1 to 128 characters.")
    account = account_id or "".join(secrets.choice(string.digits) for _ in range(12))
    if len(account) != 12 or not account.isdigit():
        raise ValidationError("Account id must be 12 digits.")
    kek = new_key()
    record = TenantRecord(
        account_id=account,
        name=name,
        wrapped_kek=k.root.wrap(kek, key_identity("tenant", account)),
        created_at=k.clock.now(),
    )

    def unit(tx: StoreTx) -> None:
        for other in tx.scan(GLOBAL_TENANT, "tenantname", prefix=name, limit=1):
            if other[0] == name:
                raise AlreadyExistsError(f"Tenant {name} already exists.")
        if not tx.insert(account, "tenant", "self", record.to_bytes()):
            raise AlreadyExistsError(f"Account {account} already exists.")
        tx.insert(GLOBAL_TENANT, "tenantname", name, account.encode("ascii"))
        mark_tracking_start(tx, account, record.created_at)

    k.store.write(unit)
    k.audit.record({"operation": "CreateTenant", "account": account, "result": "Success"})
    return record


def list_tenants(k: Kernel) -> list[TenantRecord]:
    """Return every tenant."""

    def unit(tx: StoreTx) -> list[TenantRecord]:
        out = []
        for tenant in tx.tenants():
            raw = tx.get(tenant, "tenant", "self")
            if raw is not None:
                out.append(TenantRecord.from_bytes(raw))
        return out

    return k.store.read(unit)


def find_tenant(k: Kernel, name_or_account: str) -> TenantRecord:
    """Return a tenant by account id or by name."""

    def unit(tx: StoreTx) -> TenantRecord:
        raw = tx.get(name_or_account, "tenant", "self")
        if raw is None:
            account = tx.get(GLOBAL_TENANT, "tenantname", name_or_account)
            if account is not None:
                raw = tx.get(account.decode("ascii"), "tenant", "self")
        if raw is None:
            raise NotFoundError(f"Tenant {name_or_account} does not exist.")
        return TenantRecord.from_bytes(raw)

    return k.store.read(unit)


def create_access_key(
    k: Kernel,
    account_id: str,
    user_name: str = "admin",
    is_admin: bool = False,
    *,
    is_mesh_agent: bool = False,
    is_mesh_admin: bool = False,
) -> tuple[PrincipalRecord, str]:
    """Create an access key for a principal of a tenant; return it and its secret.

    The secret is returned once and stored only wrapped by the root of trust.
    ``is_mesh_agent`` lets the key call the mesh authority (``strongroom mesh agent
    --endpoint``), which issues certificates for any workload identity;
    ``is_mesh_admin`` lets it manage the mesh over the API (``strongroom mesh register
    --endpoint``, ``unregister``, ``revoke``).
    """
    check_user_name(user_name)
    tenant = find_tenant(k, account_id)
    access_key_id = "AKIA" + "".join(secrets.choice(_ACCESS_KEY_ALPHABET) for _ in range(16))
    secret = base64.b64encode(secrets.token_bytes(30)).decode("ascii")
    record = PrincipalRecord(
        access_key_id=access_key_id,
        account_id=tenant.account_id,
        user_name=user_name,
        wrapped_secret=k.root.wrap(
            secret.encode("ascii"), key_identity("principal", tenant.account_id, access_key_id)
        ),
        created_at=k.clock.now(),
        is_admin=is_admin,
        is_mesh_agent=is_mesh_agent,
        is_mesh_admin=is_mesh_admin,
    )

    def unit(tx: StoreTx) -> None:
        tx.insert(tenant.account_id, "principal", access_key_id, record.to_bytes())
        tx.insert(GLOBAL_TENANT, "accesskey", access_key_id, tenant.account_id.encode("ascii"))

    k.store.write(unit)
    k.audit.record(
        {
            "operation": "CreateAccessKey",
            "account": tenant.account_id,
            "accessKeyId": access_key_id,
            "result": "Success",
        }
    )
    return record, secret


def delete_access_key(k: Kernel, access_key_id: str) -> None:
    """Revoke an access key."""

    def unit(tx: StoreTx) -> None:
        account = tx.get(GLOBAL_TENANT, "accesskey", access_key_id)
        if account is None:
            raise NotFoundError(f"Access key {access_key_id} does not exist.")
        tx.delete(account.decode("ascii"), "principal", access_key_id)
        tx.delete(GLOBAL_TENANT, "accesskey", access_key_id)

    k.store.write(unit)
    k.audit.record(
        {"operation": "DeleteAccessKey", "accessKeyId": access_key_id, "result": "Success"}
    )


def lookup_access_key(k: Kernel, access_key_id: str, region: str = "us-east-1") -> AccessKey | None:
    """Return the access key and its caller, or ``None`` if unknown."""

    def unit(tx: StoreTx) -> PrincipalRecord | None:
        account = tx.get(GLOBAL_TENANT, "accesskey", access_key_id)
        if account is None:
            return None
        raw = tx.get(account.decode("ascii"), "principal", access_key_id)
        return None if raw is None else PrincipalRecord.from_bytes(raw)

    record = k.store.read(unit)
    if record is None or record.status != "Active":
        return None
    secret = k.root.unwrap(
        record.wrapped_secret, key_identity("principal", record.account_id, access_key_id)
    ).decode("ascii")
    caller = Caller(
        record.account_id,
        record.arn,
        access_key_id,
        region,
        record.is_admin,
        record.is_mesh_agent,
        record.is_mesh_admin,
    )
    return AccessKey(access_key_id, secret, caller)
