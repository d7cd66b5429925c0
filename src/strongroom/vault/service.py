"""What the Vault front-end does, independent of HTTP: KV v2 reads and writes, transit.

:class:`VaultFrontEnd` takes a token's :class:`~strongroom.vault.records.TokenInfo` and
answers with Vault's JSON shapes. Key material goes through the key service only: KV
versions are sealed under the mount's KMS key; transit encrypt/decrypt/datakey are the
key service's own ``Encrypt``/``Decrypt``/``GenerateDataKey`` under the mount's KMS key
(the ciphertext is ``vault:v<key version>:<base64 KMS blob>``). Every call, allowed or
refused, is one event in the key service's audit chain.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import secrets
from collections.abc import Callable
from typing import Any, Protocol

from strongroom.crypto.blob import InvalidBlob, parse_header
from strongroom.data.keys import DataKeyProvider
from strongroom.errors import AccessDeniedError, NotFoundError, ValidationError
from strongroom.kms.caller import Caller
from strongroom.ports import Clock, RootOfTrust, Store, StoreTx
from strongroom.vault import records
from strongroom.vault.records import Mount, TokenInfo


class KmsCalls(Protocol):
    """The key service's one entry point (``KeyService.call``)."""

    def call(self, caller: Caller, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        """Run one AWS KMS operation."""
        ...


class AuditSink(Protocol):
    """The key service's audit log."""

    def record(self, event: dict[str, Any]) -> None:
        """Queue one event."""
        ...


def _iso(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).isoformat().replace("+00:00", "Z")


class VaultFrontEnd:
    """KV v2 and transit for tokens of tenants."""

    def __init__(
        self,
        store: Store,
        root: RootOfTrust,
        kms: KmsCalls,
        keys_for: Callable[[Caller], DataKeyProvider],
        audit: AuditSink,
        clock: Clock,
    ) -> None:
        self.store = store
        self.root = root
        self.kms = kms
        self.keys_for = keys_for
        self.audit = audit
        self.clock = clock

    def authenticate(self, token: str | None) -> TokenInfo | None:
        """The info of a presented token, or ``None``."""
        if not token or len(token) > 256:
            return None
        return self.store.read(lambda tx: records.read_token(tx, self.root, token))

    def record(self, info: TokenInfo | None, operation: str, target: str, result: str) -> None:
        """One audit event of this front-end."""
        self.audit.record(
            {
                "requestId": f"vault-{secrets.token_hex(8)}",
                "operation": f"vault:{operation}",
                "account": info.tenant if info else None,
                "principal": info.caller.principal_arn if info else None,
                "accessKeyId": info.caller.access_key_id if info else None,
                "region": info.caller.region if info else None,
                "keyArn": None,
                "vaultPath": target,
                "result": result,
            }
        )

    def mount_of(self, info: TokenInfo, mount: str, kind: str) -> Mount:
        """The token's mount, if it is ``mount`` and of ``kind``."""
        if mount != info.mount:
            raise AccessDeniedError("permission denied")
        found = self.store.read(lambda tx: records.load_mount(tx, info.tenant, mount))
        if found.type != kind:
            raise NotFoundError(f"{mount} is not a {kind} mount")
        return found

    # -- KV v2 ------------------------------------------------------------------------------

    def kv_read(
        self, info: TokenInfo, mount: str, path: str, version: int | None
    ) -> dict[str, Any]:
        """``GET /v1/<mount>/data/<path>``."""
        self.mount_of(info, mount, "kv")
        doc = self.store.read(lambda tx: records.load_secret(tx, info.tenant, mount, path))
        if doc is None:
            raise NotFoundError("no secret")
        wanted = version or int(doc["current"])
        entry = next((v for v in doc["versions"] if v["version"] == wanted), None)
        if entry is None or entry["destroyed"]:
            raise NotFoundError("no such version")
        data = records.open_version(self.keys_for(info.caller), info.tenant, mount, path, entry)
        return {
            "data": {
                "data": data,
                "metadata": {
                    "created_time": _iso(entry["created"]),
                    "custom_metadata": None,
                    "deletion_time": "",
                    "destroyed": False,
                    "version": wanted,
                },
            }
        }

    def kv_metadata(self, info: TokenInfo, mount: str, path: str) -> dict[str, Any]:
        """``GET /v1/<mount>/metadata/<path>``: versions, never data."""
        self.mount_of(info, mount, "kv")
        doc = self.store.read(lambda tx: records.load_secret(tx, info.tenant, mount, path))
        if doc is None:
            raise NotFoundError("no secret")
        versions = {
            str(v["version"]): {
                "created_time": _iso(v["created"]),
                "deletion_time": "",
                "destroyed": v["destroyed"],
            }
            for v in doc["versions"]
        }
        live = [v["version"] for v in doc["versions"] if not v["destroyed"]]
        return {
            "data": {
                "current_version": doc["current"],
                "oldest_version": min(live, default=0),
                "max_versions": 0,
                "created_time": _iso(doc["versions"][0]["created"]),
                "updated_time": _iso(doc["versions"][-1]["created"]),
                "versions": versions,
            }
        }

    def kv_write(
        self, tenant: str, caller: Caller, mount: str, path: str, data: dict[str, Any]
    ) -> int:
        """Add a version of a secret (the CLI's ``vault kv put`` and key rotation)."""
        if not path or len(path) > 512 or path.startswith("/") or ".." in path.split("/"):
            raise ValidationError("a secret path is 1-512 characters, relative, without '..'")
        mount_record = self.store.read(lambda tx: records.load_mount(tx, tenant, mount))
        if mount_record.type != "kv":
            raise ValidationError(f"{mount} is not a kv mount")
        now = self.clock.now()
        keys = self.keys_for(caller)

        def unit(tx: StoreTx) -> int:
            doc = records.load_secret(tx, tenant, mount, path) or {
                "v": 1,
                "current": 0,
                "versions": [],
            }
            version = int(doc["current"]) + 1
            doc["versions"].append(
                records.seal_version(keys, mount_record, tenant, path, version, data, now)
            )
            doc["current"] = version
            tx.put(tenant, records.KV_KIND, f"{mount}/{path}", records.json_bytes(doc))
            return version

        return self.store.write(unit)

    def kv_retire(self, tenant: str, mount: str, path: str, version: int) -> None:
        """Destroy one version for good (its sealed data is deleted)."""

        def unit(tx: StoreTx) -> None:
            doc = records.load_secret(tx, tenant, mount, path)
            entry = next(
                (v for v in (doc or {}).get("versions", []) if v["version"] == version), None
            )
            if doc is None or entry is None:
                raise NotFoundError("no such version")
            if version == doc["current"]:
                raise ValidationError("the current version cannot be retired; rotate first")
            entry.update(destroyed=True, sealedKey=None, sealed=None)
            tx.put(tenant, records.KV_KIND, f"{mount}/{path}", records.json_bytes(doc))

        self.store.write(unit)

    # -- transit ----------------------------------------------------------------------------

    def _transit_key(self, info: TokenInfo, mount: str) -> str:
        return self.mount_of(info, mount, "transit").kms_key

    @staticmethod
    def _context(mount: str, name: str, context: str | None) -> dict[str, str]:
        found = {"vault:transit": f"{mount}/{name}"}
        if context:
            found["vault:context"] = context
        return found

    @staticmethod
    def _ciphertext(blob: bytes) -> str:
        try:
            version = parse_header(blob)[0].key_version
        except (InvalidBlob, ValueError):
            version = 1
        return f"vault:v{version}:" + base64.b64encode(blob).decode("ascii")

    def transit_encrypt(
        self, info: TokenInfo, mount: str, name: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """``POST /v1/<mount>/encrypt/<name>`` with base64 ``plaintext``."""
        key = self._transit_key(info, mount)
        plaintext = _unb64(body.get("plaintext"), "plaintext")
        response = self.kms.call(
            info.caller,
            "Encrypt",
            {
                "KeyId": key,
                "Plaintext": plaintext,
                "EncryptionContext": self._context(mount, name, body.get("context")),
            },
        )
        return {"data": {"ciphertext": self._ciphertext(response["CiphertextBlob"])}}

    def transit_decrypt(
        self, info: TokenInfo, mount: str, name: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """``POST /v1/<mount>/decrypt/<name>`` with a ``vault:v<N>:`` ciphertext."""
        key = self._transit_key(info, mount)
        text = body.get("ciphertext")
        if not isinstance(text, str) or not text.startswith("vault:v") or text.count(":") != 2:
            raise ValidationError("ciphertext is vault:v<N>:<base64>")
        blob = _unb64(text.split(":", 2)[2], "ciphertext")
        response = self.kms.call(
            info.caller,
            "Decrypt",
            {
                "KeyId": key,
                "CiphertextBlob": blob,
                "EncryptionContext": self._context(mount, name, body.get("context")),
            },
        )
        return {"data": {"plaintext": base64.b64encode(response["Plaintext"]).decode("ascii")}}

    def transit_datakey(
        self, info: TokenInfo, mount: str, kind: str, name: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """``POST /v1/<mount>/datakey/(plaintext|wrapped)/<name>``: a 256-bit data key."""
        if kind not in ("plaintext", "wrapped"):
            raise NotFoundError("datakey type is plaintext or wrapped")
        bits = int(body.get("bits", 256))
        if bits not in (128, 256, 512):
            raise ValidationError("bits is 128, 256 or 512")
        key = self._transit_key(info, mount)
        response = self.kms.call(
            info.caller,
            "GenerateDataKey",
            {
                "KeyId": key,
                "NumberOfBytes": bits // 8,
                "EncryptionContext": self._context(mount, name, body.get("context")),
            },
        )
        data = {"ciphertext": self._ciphertext(response["CiphertextBlob"])}
        if kind == "plaintext":
            data["plaintext"] = base64.b64encode(response["Plaintext"]).decode("ascii")
        return {"data": data}


def _unb64(value: object, field_name: str) -> bytes:
    if not isinstance(value, str):
        raise ValidationError(f"{field_name} must be base64")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(f"{field_name} must be base64") from None
