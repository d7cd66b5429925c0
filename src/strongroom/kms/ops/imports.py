"""Import of key material: GetParametersForImport, ImportKeyMaterial, DeleteImportedKeyMaterial.

A key created with Origin ``EXTERNAL`` starts in ``PendingImport`` with no material. The
client asks for a fresh RSA wrapping key and an import token (valid 24 hours, see
:mod:`strongroom.kms.import_token`), wraps its material under the public key exactly as for
AWS KMS, and sends it back with the token. The material is stored as a version row,
wrapped under the tenant KEK like generated material, and the key becomes usable.

The first material is bound to the key for life. A symmetric key takes new material with
``ImportType=NEW_KEY_MATERIAL`` (pending rotation until ``RotateKeyOnDemand``, see
:mod:`strongroom.kms.imported_materials`); re-importing (after a deletion, an expiry, or to
change the expiry) must bring a material the key already has. A material's identity is its
``KeyMaterialId``, a keyed fingerprint (HMAC-SHA256 under a key derived from the tenant
KEK), which survives deletion of the material and reveals nothing about it.

Multi-Region keys take imported material too: each related key imports the same material
on its own (:mod:`strongroom.kms.related_imports`).

Material whose ``ValidTo`` has passed counts as deleted wherever the key is looked up
(:func:`~strongroom.kms.imported_materials.current_view`); maintenance then deletes it.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap_with_padding

from strongroom.crypto.keytypes import RsaKeyType
from strongroom.errors import (
    ExpiredImportTokenError,
    IncorrectKeyMaterialError,
    InvalidCiphertextError,
    InvalidImportTokenError,
    NotFoundError,
    UnsupportedOperationError,
    ValidationError,
)
from strongroom.kms.import_token import (
    WRAPPING_ALGORITHMS,
    WRAPPING_KEY_BITS,
    ImportTokenHeader,
    open_token,
    seal_token,
)
from strongroom.kms.imported_materials import (
    EXTERNAL,
    KEY_MATERIAL_DOES_NOT_EXPIRE,
    KEY_MATERIAL_EXPIRES,
    KeyMaterials,
    current_view,
    import_target,
    is_imported,
    settle,
    without_material,
)
from strongroom.kms.kernel import DAY, Kernel, OpContext
from strongroom.kms.keyspec import KEY_SPECS
from strongroom.kms.material import checked_material, imported_material_id
from strongroom.kms.messages.imports import (
    DeleteImportedKeyMaterialRequest,
    DeleteImportedKeyMaterialResponse,
    GetParametersForImportRequest,
    GetParametersForImportResponse,
    ImportKeyMaterialRequest,
    ImportKeyMaterialResponse,
)
from strongroom.kms.records import KeyRecord, KeyVersionRecord, key_version_name
from strongroom.kms.related_imports import materials_of, related_import_target
from strongroom.kms.rsa_encryption import oaep
from strongroom.kms.signing import load_private
from strongroom.kms.states import check_state
from strongroom.ports import StoreTx

IMPORT_TOKEN_LIFETIME_S = DAY
"""An import token and its wrapping key are valid for 24 hours, as in AWS KMS."""
MAX_VALID_TO_S = 365 * DAY
"""``ValidTo`` may be at most 365 days ahead, as in AWS KMS."""


def _cleared(row: KeyVersionRecord) -> KeyVersionRecord:
    """``row`` with its material deleted (its id stays: the same material may come back)."""
    return row.replace(wrapped_material=b"", valid_to=None, expiration_model=None)


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
    rsa_key = isinstance(KEY_SPECS[key.key_spec].key_type, RsaKeyType)
    if rsa_key and not algorithm.startswith("RSA_AES_KEY_WRAP_"):
        raise ValidationError(
            f"{algorithm} cannot wrap RSA private keys; use RSA_AES_KEY_WRAP_SHA_256."
        )
    if key.key_spec == "ECC_NIST_P521" and bits == 2048 and algorithm.startswith("RSAES_OAEP_"):
        raise ValidationError(f"{algorithm} with RSA_2048 cannot wrap ECC_NIST_P521 key material.")


def imported_materials(k: Kernel, tx: StoreTx, key: KeyRecord) -> KeyMaterials:
    """The imported materials of ``key`` (bound and pending)."""
    return materials_of(tx, key)


def delete_expired_material(k: Kernel) -> list[str]:
    """Delete imported material past its ``ValidTo`` (and any left behind); audited."""

    def unit(tx: StoreTx) -> list[KeyRecord]:
        done = []
        now = k.clock.now()
        for tenant in tx.tenants():
            for _, raw in tx.scan(tenant, "key"):
                key = KeyRecord.from_bytes(raw)
                if key.origin != EXTERNAL or key.current_version == 0:
                    continue
                materials = imported_materials(k, tx, key)
                expired = [
                    row
                    for row in materials.rows
                    if row.wrapped_material and not is_imported(row, now)
                ]
                for row in expired:
                    name = key_version_name(key, row.version)
                    if row.pending_rotation:  # never bound: forgotten entirely
                        tx.delete(tenant, "keyver", name)
                    else:
                        tx.put(tenant, "keyver", name, _cleared(row).to_bytes())
                if not expired:
                    continue
                settled = settle(key, imported_materials(k, tx, key), now)
                tx.put(tenant, "key", key.row_name, settled.to_bytes())
                done.append(key)
        return done

    keys = k.write(None, unit)
    for key in keys:
        k.forget_key(key.account_id, key.key_id)
        k.audit.record(
            {
                "operation": "DeleteExpiredKeyMaterial",
                "keyArn": key.arn,
                "result": "Success",
                "account": key.account_id,
            }
        )
    return [key.arn for key in keys]


def imported_material_id_of(k: Kernel, key: KeyRecord, material: bytes) -> str:
    """The ``KeyMaterialId`` of ``material`` in ``key``: 64 hex digits, keyed, one-way."""
    return imported_material_id(
        k.materials.material_fingerprint_key(key.account_id), key.key_id, material
    )


def _check_external(key: KeyRecord, operation: str) -> None:
    if key.origin != EXTERNAL:
        raise UnsupportedOperationError(
            f"{key.arn} origin is {key.origin}; {operation} needs a key with origin EXTERNAL."
        )


def _locked(
    k: Kernel,
    tx: StoreTx,
    ctx: OpContext,
    key_id: str,
    action: str,
    group: str | None = None,
) -> KeyRecord:
    """Resolve, authorise, lock and re-read a key of origin EXTERNAL.

    With a state ``group``, the key's state is checked before its origin, as AWS does.
    """
    key = k.resolve_key(tx, ctx, key_id)
    k.authorize(tx, ctx, key, action)
    raw = tx.get_for_update(key.account_id, "key", key.row_name)
    if raw is not None:
        key = current_view(KeyRecord.from_bytes(raw), k.clock.now())
    if group is not None:
        check_state(key.key_state, group, key.arn)
    _check_external(key, action)
    return key


def _expiration(k: Kernel, req: ImportKeyMaterialRequest) -> tuple[str, float | None]:
    model = req.expiration_model
    valid_to = req.valid_to
    if model is None:
        model = KEY_MATERIAL_EXPIRES
    if model == KEY_MATERIAL_DOES_NOT_EXPIRE:
        if valid_to is not None:
            raise ValidationError(
                "ValidTo must be omitted when ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE."
            )
        return model, None
    if valid_to is None:
        raise ValidationError("ValidTo is required when ExpirationModel is KEY_MATERIAL_EXPIRES.")
    now = k.clock.now()
    if not now < float(valid_to) <= now + MAX_VALID_TO_S:
        raise ValidationError("ValidTo must be in the future and at most 365 days ahead.")
    return model, float(valid_to)


def get_parameters_for_import(
    k: Kernel, ctx: OpContext, req: GetParametersForImportRequest
) -> GetParametersForImportResponse:
    """Return a fresh RSA wrapping public key and an import token, valid 24 hours."""
    algorithm, spec = req.wrapping_algorithm, req.wrapping_key_spec
    if algorithm not in WRAPPING_ALGORITHMS:
        raise UnsupportedOperationError(f"WrappingAlgorithm {algorithm} is not supported.")
    if spec not in WRAPPING_KEY_BITS:
        raise UnsupportedOperationError(f"WrappingKeySpec {spec} is not supported.")
    bits = WRAPPING_KEY_BITS[spec]

    def unit(tx: StoreTx) -> KeyRecord:
        key = k.resolve_key(tx, ctx, req.key_id)
        k.authorize(tx, ctx, key, "GetParametersForImport")
        check_state(key.key_state, "import", key.arn)  # the state first, then the origin
        _check_external(key, "GetParametersForImport")
        return key

    key = k.read(unit)
    _check_wrapping(key, algorithm, bits)
    private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    valid_to_ms = int((k.clock.now() + IMPORT_TOKEN_LIFETIME_S) * 1000)
    header = ImportTokenHeader(key.key_id, algorithm, bits, valid_to_ms)
    private_der = private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    token = seal_token(k.materials.tenant_kek(key.account_id), key.account_id, header, private_der)
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return GetParametersForImportResponse(
        import_token=token,
        key_id=key.arn,
        parameters_valid_to=valid_to_ms / 1000,
        public_key=public,
    )


def import_key_material(
    k: Kernel, ctx: OpContext, req: ImportKeyMaterialRequest
) -> ImportKeyMaterialResponse:
    """Import (or re-import the same) key material into a key of origin EXTERNAL."""
    model, valid_to = _expiration(k, req)

    def unit(tx: StoreTx) -> tuple[KeyRecord, str]:
        key = _locked(k, tx, ctx, req.key_id, "ImportKeyMaterial", "import")
        account = key.account_id
        header, wrapping_der = open_token(
            k.materials.tenant_kek(account), account, req.import_token
        )
        if header.key_id != key.key_id:
            raise InvalidImportTokenError("The import token was issued for another key.")
        if k.clock.now() * 1000 >= header.valid_to_ms:
            raise ExpiredImportTokenError("The import token has expired.")
        raw_material = unwrap_import(
            header.wrapping_algorithm, wrapping_der, req.encrypted_key_material
        )
        try:
            material, public = checked_material(key.key_spec, raw_material)
        except ValueError as exc:
            raise IncorrectKeyMaterialError(f"{exc} (key spec {key.key_spec}).") from None
        material_id = imported_material_id_of(k, key, material)
        materials = imported_materials(k, tx, key)
        now = k.clock.now()
        row = related_import_target(tx, key, materials, material_id, req, now)
        if row is None:
            row = import_target(key, materials, material_id, req, now)
        stored = KeyVersionRecord(
            key_id=key.key_id,
            version=row.version,
            created_at=row.created_at,
            wrapped_material=k.materials.wrap_material(account, key.key_id, row.version, material),
            rotation_type=row.rotation_type,
            public_key=public,
            material_id=material_id,
            valid_to=valid_to,
            expiration_model=model,
            description=(
                row.description
                if req.key_material_description is None
                else req.key_material_description
            ),
            pending_rotation=row.pending_rotation,
        )
        tx.put(account, "keyver", key_version_name(key, row.version), stored.to_bytes())
        if key.current_version == 0:
            key = key.replace(current_version=stored.version)
        updated = settle(key, imported_materials(k, tx, key), k.clock.now())
        tx.put(account, "key", key.row_name, updated.to_bytes())
        return updated, material_id

    key, material_id = k.write(ctx, unit)
    k.forget_key(key.account_id, key.key_id)
    return ImportKeyMaterialResponse(key_id=key.arn, key_material_id=material_id)


def delete_imported_key_material(
    k: Kernel, ctx: OpContext, req: DeleteImportedKeyMaterialRequest
) -> DeleteImportedKeyMaterialResponse:
    """Delete imported material; the key becomes PendingImport until re-imported."""

    def unit(tx: StoreTx) -> tuple[KeyRecord, str]:
        key = _locked(k, tx, ctx, req.key_id, "DeleteImportedKeyMaterial")
        materials = imported_materials(k, tx, key)
        requested = req.key_material_id
        current = materials.current(key)
        row = materials.find(requested) if requested is not None else current
        if row is None:
            if requested is not None:
                raise NotFoundError(f"Key material {requested} of {key.arn} does not exist.")
            return without_material(key), ""
        name = key_version_name(key, row.version)
        if row.pending_rotation:  # never bound: forgotten, the key is unchanged
            tx.delete(key.account_id, "keyver", name)
            return key, row.material_id
        tx.put(key.account_id, "keyver", name, _cleared(row).to_bytes())
        updated = settle(key, imported_materials(k, tx, key), k.clock.now())
        tx.put(key.account_id, "key", key.row_name, updated.to_bytes())
        return updated, row.material_id

    key, material_id = k.write(ctx, unit)
    k.forget_key(key.account_id, key.key_id)
    return DeleteImportedKeyMaterialResponse(key_id=key.arn, key_material_id=material_id)
