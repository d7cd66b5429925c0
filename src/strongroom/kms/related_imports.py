"""Imported key material in multi-Region keys: the same material in every related key.

As in AWS KMS, a multi-Region key of origin ``EXTERNAL`` is a set of related keys that each
hold their own copy of one imported material (each its own version rows, see
:func:`strongroom.kms.records.key_version_prefix`): a replica starts ``PendingImport``, and
the material must be imported into it as into its primary. Each related key's material is
deleted, expires and is re-imported on its own, so a key's state never depends on its
relatives'. What ties them together is the material: a related key only takes the
material its relatives were given, recognised by its ``KeyMaterialId`` (a keyed
fingerprint over the shared key id and the material), so ciphertexts made under one decrypt
under the others. Importing other material fails with ``IncorrectKeyMaterialException``.

New key material (``ImportType=NEW_KEY_MATERIAL`` after the first import, then
``RotateKeyOnDemand``) is not offered for multi-Region keys: the version rows of the
related keys would have to rotate together.
"""

from __future__ import annotations

from strongroom.errors import IncorrectKeyMaterialError, UnsupportedOperationError
from strongroom.kms.imported_materials import NEW_KEY_MATERIAL, KeyMaterials
from strongroom.kms.messages.imports import ImportKeyMaterialRequest
from strongroom.kms.multi_region import related_rows
from strongroom.kms.records import KeyRecord, KeyVersionRecord, key_version_prefix
from strongroom.ports import StoreTx


def materials_of(tx: StoreTx, key: KeyRecord) -> KeyMaterials:
    """The imported materials of ``key`` (its own version rows)."""
    rows = tx.scan(key.account_id, "keyver", prefix=key_version_prefix(key))
    return KeyMaterials.of((KeyVersionRecord.from_bytes(raw) for _, raw in rows), key)


def related_import_target(
    tx: StoreTx,
    key: KeyRecord,
    materials: KeyMaterials,
    material_id: str,
    request: ImportKeyMaterialRequest,
    now: float,
) -> KeyVersionRecord | None:
    """The version row an import into a multi-Region key fills, or ``None`` if not one.

    ``None`` also for the first import into a key whose relatives hold no material yet
    (a primary before any replica): that import is checked as for a single-Region key.
    Otherwise the material must be the one the related keys hold, and it fills the
    version its relatives keep it under.
    """
    if not key.multi_region:
        return None
    if request.import_type == NEW_KEY_MATERIAL and materials.bound:
        raise UnsupportedOperationError(
            f"{key.arn} is a multi-Region key: Strongroom does not import new key material "
            "into multi-Region keys; re-import its material with ImportType "
            "EXISTING_KEY_MATERIAL."
        )
    known = [
        row
        for other in related_rows(tx, key)
        if other.region != key.region
        for row in materials_of(tx, other).bound
    ]
    if not known:
        return None
    requested = request.key_material_id
    if requested is not None and requested != material_id:
        raise IncorrectKeyMaterialError(
            f"The key material does not match KeyMaterialId {requested} of {key.arn}."
        )
    match = next((row for row in known if row.material_id == material_id), None)
    own = materials.find(material_id)
    if match is None or (own is None and materials.bound):
        raise IncorrectKeyMaterialError(
            f"The key material is not the key material of {key.arn} and its related "
            "multi-Region keys: import the same key material into every related key."
        )
    if own is not None:
        return own
    return KeyVersionRecord(
        key_id=key.key_id,
        version=match.version,
        created_at=now,
        wrapped_material=b"",
        rotation_type=match.rotation_type,
    )
