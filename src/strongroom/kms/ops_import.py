"""Import of key material: GetParametersForImport, ImportKeyMaterial, DeleteImportedKeyMaterial.

A key created with Origin ``EXTERNAL`` starts in ``PendingImport`` with no material. The
client asks for a fresh RSA wrapping key and an import token (valid 24 hours, see
:mod:`strongroom.kms.import_token`), wraps its material under the public key exactly as for
AWS KMS, and sends it back with the token. The material is stored as version 1, wrapped
under the tenant KEK like generated material, and the key becomes usable.

A key is bound to its first material for life: re-importing (after a deletion, an expiry,
or to change the expiry) must bring the same material. Its identity is kept as the
``KeyMaterialId``, a keyed fingerprint (HMAC-SHA256 under a key derived from the tenant
KEK), which survives deletion of the material and reveals nothing about it.

Material whose ``ValidTo`` has passed counts as deleted wherever the key is looked up
(:meth:`ImportOps.current_view`); maintenance then deletes it from the store.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap_with_padding

from strongroom.errors import (
    ExpiredImportTokenError,
    IncorrectKeyMaterialError,
    InvalidCiphertextError,
    InvalidImportTokenError,
    NotFoundError,
    UnsupportedOperationError,
    ValidationError,
)
from strongroom.kms.core import DAY, OpContext
from strongroom.kms.import_token import (
    WRAPPING_ALGORITHMS,
    WRAPPING_KEY_BITS,
    ImportTokenHeader,
    open_token,
    seal_token,
)
from strongroom.kms.keyspec import KEY_SPECS
from strongroom.kms.material import checked_material, imported_material_id
from strongroom.kms.ops_asymmetric import load_private, oaep
from strongroom.kms.ops_keys import KeyOps
from strongroom.kms.ports import StoreTx
from strongroom.kms.records import KeyRecord, KeyVersionRecord, version_name
from strongroom.kms.states import ENABLED, PENDING_DELETION, PENDING_IMPORT, check_state

EXTERNAL = "EXTERNAL"
KEY_MATERIAL_EXPIRES = "KEY_MATERIAL_EXPIRES"
KEY_MATERIAL_DOES_NOT_EXPIRE = "KEY_MATERIAL_DOES_NOT_EXPIRE"
IMPORT_TOKEN_LIFETIME_S = DAY
"""An import token and its wrapping key are valid for 24 hours, as in AWS KMS."""
MAX_VALID_TO_S = 365 * DAY
"""``ValidTo`` may be at most 365 days ahead, as in AWS KMS."""


def without_material(key: KeyRecord) -> KeyRecord:
    """``key`` after its imported material is deleted or expired.

    The state becomes ``PendingImport``; a key pending deletion keeps that state and comes
    back as ``PendingImport`` if its deletion is cancelled.
    """
    cleared = key.replace(current_version=0, valid_to=None, expiration_model=None)
    if key.key_state == PENDING_DELETION:
        return cleared.replace(state_before_deletion=PENDING_IMPORT)
    return cleared.replace(key_state=PENDING_IMPORT)


def _awaits_import(key: KeyRecord) -> bool:
    """Whether a stored key is (or, once its deletion is cancelled, will be) PendingImport."""
    return key.key_state == PENDING_IMPORT or (
        key.key_state == PENDING_DELETION and key.state_before_deletion == PENDING_IMPORT
    )


def unwrap_import(algorithm: str, wrapping_der: bytes, encrypted: bytes) -> bytes:
    """Recover key material wrapped as AWS KMS clients wrap it; any failure is one error.

    ``RSAES_OAEP_SHA_*``: the material is encrypted directly with RSA-OAEP.
    ``RSA_AES_KEY_WRAP_SHA_*``: an AES key encrypted with RSA-OAEP, followed by the material
    wrapped under that AES key with AES key wrap with padding (RFC 5649).
    """
    private = load_private(wrapping_der)
    if not isinstance(private, rsa.RSAPrivateKey):
        raise InvalidImportTokenError("The import token is not valid.")
    size = private.key_size // 8
    oaep_name = "RSAES_OAEP_" + algorithm.removeprefix("RSA_AES_KEY_WRAP_")
    try:
        if algorithm.startswith("RSAES_OAEP_"):
            if len(encrypted) != size:
                raise ValueError("ciphertext length")
            return private.decrypt(encrypted, oaep(algorithm))
        if len(encrypted) <= size:
            raise ValueError("ciphertext length")
        aes_key = private.decrypt(encrypted[:size], oaep(oaep_name))
        if len(aes_key) not in (16, 24, 32):
            raise ValueError("AES key length")
        return aes_key_unwrap_with_padding(aes_key, encrypted[size:])
    except (ValueError, InvalidUnwrap) as exc:
        raise InvalidCiphertextError(
            "The key material could not be decrypted with the wrapping key of the import token."
        ) from exc


def _check_wrapping(key: KeyRecord, algorithm: str, bits: int) -> None:
    """Refuse combinations AWS KMS refuses before any material is sent."""
    family = KEY_SPECS[key.key_spec].family
    if family == "rsa" and not algorithm.startswith("RSA_AES_KEY_WRAP_"):
        raise ValidationError(
            f"{algorithm} cannot wrap RSA private keys; use RSA_AES_KEY_WRAP_SHA_256."
        )
    if key.key_spec == "ECC_NIST_P521" and bits == 2048 and algorithm.startswith("RSAES_OAEP_"):
        raise ValidationError(f"{algorithm} with RSA_2048 cannot wrap ECC_NIST_P521 key material.")


class ImportOps(KeyOps):
    """GetParametersForImport, ImportKeyMaterial, DeleteImportedKeyMaterial and expiry."""

    # -- expiry of imported material -------------------------------------------------------

    def material_expired(self, key: KeyRecord) -> bool:
        """Whether ``key`` holds imported material whose ``ValidTo`` has passed."""
        return (
            key.origin == EXTERNAL
            and key.current_version > 0
            and key.valid_to is not None
            and self.clock.now() >= key.valid_to
        )

    def current_view(self, key: KeyRecord) -> KeyRecord:
        """Return ``key`` with expired imported material counted as deleted.

        The state reads ``PendingImport``; ``current_version`` is kept, so the record still
        names the version its (unusable) material was stored under.
        """
        if not self.material_expired(key):
            return key
        return without_material(key).replace(current_version=key.current_version)

    def resolve_key(self, tx: StoreTx, ctx: OpContext, key_spec: str) -> KeyRecord:
        """Resolve as the core does, then apply :meth:`current_view`."""
        return self.current_view(super().resolve_key(tx, ctx, key_spec))

    def delete_due_keys(self) -> list[str]:
        """Delete expired imported material first, then shred keys past their deletion."""
        self.delete_expired_material()
        return super().delete_due_keys()

    def delete_expired_material(self) -> list[str]:
        """Delete imported material past its ``ValidTo`` (and any left behind); audited."""

        def unit(tx: StoreTx) -> list[KeyRecord]:
            done = []
            for tenant in tx.tenants():
                for _, raw in tx.scan(tenant, "key"):
                    key = KeyRecord.from_bytes(raw)
                    if key.origin != EXTERNAL or not (
                        self.material_expired(key) or _awaits_import(key)
                    ):
                        continue
                    name = version_name(key.key_id, 1)
                    row = tx.get(tenant, "keyver", name)
                    record = None if row is None else KeyVersionRecord.from_bytes(row)
                    if record is not None and record.wrapped_material:
                        empty = record.replace(wrapped_material=b"")
                        tx.put(tenant, "keyver", name, empty.to_bytes())
                    elif key.current_version == 0:
                        continue
                    tx.put(tenant, "key", key.key_id, without_material(key).to_bytes())
                    done.append(key)
            return done

        keys = self.write(None, unit)
        for key in keys:
            self.forget_key(key.account_id, key.key_id)
            self.audit.record(
                {
                    "operation": "DeleteExpiredKeyMaterial",
                    "keyArn": key.arn,
                    "result": "Success",
                    "account": key.account_id,
                }
            )
        return [key.arn for key in keys]

    # -- helpers ---------------------------------------------------------------------------

    def material_id(self, key: KeyRecord, material: bytes) -> str:
        """The ``KeyMaterialId`` of ``material`` in ``key``: 64 hex digits, keyed, one-way."""
        return imported_material_id(
            self.material_fingerprint_key(key.account_id), key.key_id, material
        )

    @staticmethod
    def _check_external(key: KeyRecord, operation: str) -> None:
        if key.origin != EXTERNAL:
            raise UnsupportedOperationError(
                f"{key.arn} origin is {key.origin}; {operation} needs a key with origin EXTERNAL."
            )

    def _locked(self, tx: StoreTx, ctx: OpContext, req: dict[str, Any], action: str) -> KeyRecord:
        """Resolve, authorise, lock and re-read a key of origin EXTERNAL."""
        key = self.resolve_key(tx, ctx, req["KeyId"])
        self.authorize(tx, ctx, key, action)
        raw = tx.get_for_update(key.account_id, "key", key.key_id)
        if raw is not None:
            key = self.current_view(KeyRecord.from_bytes(raw))
        self._check_external(key, action)
        return key

    def _expiration(self, req: dict[str, Any]) -> tuple[str, float | None]:
        model = req.get("ExpirationModel")
        valid_to = req.get("ValidTo")
        if model is None:
            model = KEY_MATERIAL_EXPIRES
        if model == KEY_MATERIAL_DOES_NOT_EXPIRE:
            if valid_to is not None:
                raise ValidationError(
                    "ValidTo must be omitted when ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE."
                )
            return model, None
        if valid_to is None:
            raise ValidationError(
                "ValidTo is required when ExpirationModel is KEY_MATERIAL_EXPIRES."
            )
        now = self.clock.now()
        if not now < float(valid_to) <= now + MAX_VALID_TO_S:
            raise ValidationError("ValidTo must be in the future and at most 365 days ahead.")
        return model, float(valid_to)

    # -- operations ------------------------------------------------------------------------

    def op_get_parameters_for_import(self, ctx: OpContext, req: dict[str, Any]) -> dict[str, Any]:
        """Return a fresh RSA wrapping public key and an import token, valid 24 hours."""
        algorithm, spec = req["WrappingAlgorithm"], req["WrappingKeySpec"]
        if algorithm not in WRAPPING_ALGORITHMS:
            raise UnsupportedOperationError(f"WrappingAlgorithm {algorithm} is not supported.")
        if spec not in WRAPPING_KEY_BITS:
            raise UnsupportedOperationError(f"WrappingKeySpec {spec} is not supported.")
        bits = WRAPPING_KEY_BITS[spec]

        def unit(tx: StoreTx) -> KeyRecord:
            key = self.resolve_key(tx, ctx, req["KeyId"])
            self.authorize(tx, ctx, key, "GetParametersForImport")
            self._check_external(key, "GetParametersForImport")
            check_state(key.key_state, "import", key.arn)
            return key

        key = self.read(unit)
        _check_wrapping(key, algorithm, bits)
        private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        valid_to_ms = int((self.clock.now() + IMPORT_TOKEN_LIFETIME_S) * 1000)
        header = ImportTokenHeader(key.key_id, algorithm, bits, valid_to_ms)
        private_der = private.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        token = seal_token(self.tenant_kek(key.account_id), key.account_id, header, private_der)
        public = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return {
            "KeyId": key.arn,
            "ImportToken": token,
            "PublicKey": public,
            "ParametersValidTo": valid_to_ms / 1000,
        }

    def op_import_key_material(self, ctx: OpContext, req: dict[str, Any]) -> dict[str, Any]:
        """Import (or re-import the same) key material into a key of origin EXTERNAL."""
        model, valid_to = self._expiration(req)

        def unit(tx: StoreTx) -> tuple[KeyRecord, str]:
            key = self._locked(tx, ctx, req, "ImportKeyMaterial")
            check_state(key.key_state, "import", key.arn)
            account = key.account_id
            header, wrapping_der = open_token(self.tenant_kek(account), account, req["ImportToken"])
            if header.key_id != key.key_id:
                raise InvalidImportTokenError("The import token was issued for another key.")
            if self.clock.now() * 1000 >= header.valid_to_ms:
                raise ExpiredImportTokenError("The import token has expired.")
            raw_material = unwrap_import(
                header.wrapping_algorithm, wrapping_der, req["EncryptedKeyMaterial"]
            )
            try:
                material, public = checked_material(key.key_spec, raw_material)
            except ValueError as exc:
                raise IncorrectKeyMaterialError(f"{exc} (key spec {key.key_spec}).") from None
            material_id = self.material_id(key, material)
            name = version_name(key.key_id, 1)
            row = tx.get(account, "keyver", name)
            previous = None if row is None else KeyVersionRecord.from_bytes(row)
            expected = previous.material_id if previous is not None else None
            if expected and req.get("ImportType") == "NEW_KEY_MATERIAL":
                # AWS rotates imported keys by importing new material; a key here keeps
                # its first material for life, so only the same one may come back
                raise UnsupportedOperationError(
                    f"{key.arn} has key material already: new key material (rotation of an "
                    "imported key) is not supported; re-import the same material with "
                    "ImportType EXISTING_KEY_MATERIAL."
                )
            if not expected and req.get("ImportType") == "EXISTING_KEY_MATERIAL":
                raise IncorrectKeyMaterialError(
                    f"No key material was ever imported into {key.arn}: use ImportType "
                    "NEW_KEY_MATERIAL (or none) for the first import."
                )
            requested = req.get("KeyMaterialId")
            if (expected and expected != material_id) or (
                requested is not None and requested != material_id
            ):
                raise IncorrectKeyMaterialError(
                    f"The key material is not the key material previously imported into {key.arn}."
                )
            version = KeyVersionRecord(
                key_id=key.key_id,
                version=1,
                created_at=self.clock.now() if previous is None else previous.created_at,
                wrapped_material=self.wrap_material(account, key.key_id, 1, material),
                public_key=public,
                material_id=material_id,
            )
            tx.put(account, "keyver", name, version.to_bytes())
            updated = key.replace(
                key_state=ENABLED if key.key_state == PENDING_IMPORT else key.key_state,
                current_version=1,
                valid_to=valid_to,
                expiration_model=model,
            )
            tx.put(account, "key", key.key_id, updated.to_bytes())
            return updated, material_id

        key, material_id = self.write(ctx, unit)
        self.forget_key(key.account_id, key.key_id)
        return {"KeyId": key.arn, "KeyMaterialId": material_id}

    def op_delete_imported_key_material(
        self, ctx: OpContext, req: dict[str, Any]
    ) -> dict[str, Any]:
        """Delete imported material; the key becomes PendingImport until re-imported."""

        def unit(tx: StoreTx) -> tuple[KeyRecord, str]:
            key = self._locked(tx, ctx, req, "DeleteImportedKeyMaterial")
            name = version_name(key.key_id, 1)
            row = tx.get(key.account_id, "keyver", name)
            record = None if row is None else KeyVersionRecord.from_bytes(row)
            material_id = "" if record is None else record.material_id
            requested = req.get("KeyMaterialId")
            if requested is not None and requested != material_id:
                raise NotFoundError(f"Key material {requested} of {key.arn} does not exist.")
            if record is not None and record.wrapped_material:
                tx.put(
                    key.account_id, "keyver", name, record.replace(wrapped_material=b"").to_bytes()
                )
            updated = without_material(key)
            tx.put(key.account_id, "key", key.key_id, updated.to_bytes())
            return updated, material_id

        key, material_id = self.write(ctx, unit)
        self.forget_key(key.account_id, key.key_id)
        return {"KeyId": key.arn, "KeyMaterialId": material_id}
