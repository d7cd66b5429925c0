"""The key materials of a key with imported material (origin ``EXTERNAL``), as AWS KMS keeps them.

A symmetric key of origin ``EXTERNAL`` can hold several materials, one per version row:

- the first material imported is **bound** to the key for life (version 1);
- ``ImportKeyMaterial`` with ``ImportType=NEW_KEY_MATERIAL`` adds a material **pending
  rotation** (a new version row, not yet bound: it can be deleted and replaced);
- ``RotateKeyOnDemand`` makes the pending material current; it is bound from then on, and
  the one before stays bound as ``NON_CURRENT`` (it still decrypts what it encrypted).

The key is usable only while every bound material is imported and unexpired: deleting one,
or letting one expire, puts the key in ``PendingImport`` until that same material (same
``KeyMaterialId``) is imported again. Asymmetric and HMAC keys hold one material only.

This module is pure: it reads version rows and a key record and says what follows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from strongroom.errors import (
    IncorrectKeyMaterialError,
    InvalidStateError,
    UnsupportedOperationError,
    ValidationError,
)
from strongroom.kms.keyspec import SYMMETRIC_DEFAULT
from strongroom.kms.messages.imports import ImportKeyMaterialRequest
from strongroom.kms.records import EXTERNAL as EXTERNAL  # its home is the records
from strongroom.kms.records import KeyRecord, KeyVersionRecord
from strongroom.kms.states import ENABLED, PENDING_DELETION, PENDING_IMPORT

KEY_MATERIAL_EXPIRES = "KEY_MATERIAL_EXPIRES"
KEY_MATERIAL_DOES_NOT_EXPIRE = "KEY_MATERIAL_DOES_NOT_EXPIRE"
CURRENT = "CURRENT"
NON_CURRENT = "NON_CURRENT"
PENDING_ROTATION = "PENDING_ROTATION"
IMPORTED = "IMPORTED"
IMPORT_PENDING = "PENDING_IMPORT"
NEW_KEY_MATERIAL = "NEW_KEY_MATERIAL"
EXISTING_KEY_MATERIAL = "EXISTING_KEY_MATERIAL"


@dataclass(frozen=True, slots=True)
class KeyMaterials:
    """The version rows of one imported key, split into bound and pending materials."""

    bound: tuple[KeyVersionRecord, ...]
    pending: KeyVersionRecord | None

    @classmethod
    def of(cls, rows: Iterable[KeyVersionRecord], key: KeyRecord | None = None) -> KeyMaterials:
        """Split ``rows`` (any order); rows never imported (no ``material_id``) are skipped.

        With ``key``, a row written before materials had their own expiry takes the key's
        (records of that time kept one material, and its expiry on the key).
        """
        ordered = sorted((r for r in rows if r.material_id), key=lambda r: r.version)
        if key is not None and key.expiration_model is not None:
            ordered = [
                r.replace(valid_to=key.valid_to, expiration_model=key.expiration_model)
                if r.expiration_model is None and r.wrapped_material and not r.pending_rotation
                else r
                for r in ordered
            ]
        pending = [r for r in ordered if r.pending_rotation]
        return cls(
            bound=tuple(r for r in ordered if not r.pending_rotation),
            pending=pending[-1] if pending else None,
        )

    @property
    def rows(self) -> tuple[KeyVersionRecord, ...]:
        """Every material's row: the bound ones, then the pending one if any."""
        return (*self.bound, self.pending) if self.pending is not None else self.bound

    def find(self, material_id: str) -> KeyVersionRecord | None:
        """The bound or pending row of ``material_id``, if any."""
        for row in self.rows:
            if row.material_id == material_id:
                return row
        return None

    def current(self, key: KeyRecord) -> KeyVersionRecord | None:
        """The row of the key's current material (the newest bound one for old records)."""
        for row in self.bound:
            if row.version == key.current_version:
                return row
        return self.bound[-1] if self.bound else None

    @property
    def next_version(self) -> int:
        """The version number a new material takes."""
        return max((r.version for r in self.rows), default=0) + 1


def is_imported(row: KeyVersionRecord, now: float) -> bool:
    """Whether ``row`` holds its material now (imported, not deleted, not expired)."""
    return bool(row.wrapped_material) and (row.valid_to is None or now < row.valid_to)


def settle(key: KeyRecord, materials: KeyMaterials, now: float) -> KeyRecord:
    """``key`` as its materials make it: current material, expiry fields and key state.

    The key is ``PendingImport`` while a bound material is missing (a key pending deletion
    keeps that state and records ``PendingImport`` for a cancellation); once every bound
    material is back, a ``PendingImport`` key is ``Enabled`` again.
    """
    current = materials.current(key)
    if current is None:
        return key
    expiries = [r.valid_to for r in materials.bound if r.valid_to is not None]
    settled = key.replace(
        current_version=current.version,
        valid_to=current.valid_to,
        expiration_model=current.expiration_model,
        materials_valid_to=min(expiries) if expiries else None,
    )
    complete = all(is_imported(r, now) for r in materials.bound)
    if settled.key_state == PENDING_DELETION:
        before = settled.state_before_deletion
        if not complete:
            return settled.replace(state_before_deletion=PENDING_IMPORT)
        return settled.replace(
            state_before_deletion=ENABLED if before == PENDING_IMPORT else before
        )
    if not complete:
        return settled.replace(key_state=PENDING_IMPORT)
    if settled.key_state == PENDING_IMPORT:
        return settled.replace(key_state=ENABLED)
    return settled


def material_state(key: KeyRecord, row: KeyVersionRecord) -> str:
    """``KeyMaterialState`` of ``row``: ``CURRENT``, ``NON_CURRENT`` or ``PENDING_ROTATION``."""
    if row.pending_rotation:
        return PENDING_ROTATION
    return CURRENT if row.version == key.current_version else NON_CURRENT


def import_state(row: KeyVersionRecord, now: float) -> str:
    """``ImportState`` of ``row``: ``IMPORTED`` or ``PENDING_IMPORT``."""
    return IMPORTED if is_imported(row, now) else IMPORT_PENDING


def import_target(
    key: KeyRecord,
    materials: KeyMaterials,
    material_id: str,
    request: ImportKeyMaterialRequest,
    now: float,
) -> KeyVersionRecord:
    """The version row an ``ImportKeyMaterial`` request fills (its material still empty).

    The first import fills version 1; ``NEW_KEY_MATERIAL`` into a key with material adds a
    row pending rotation; otherwise the material must be one the key has (bound or pending),
    and ``KeyMaterialId``, when given, must be its id.
    """
    import_type, requested = request.import_type, request.key_material_id
    if import_type == NEW_KEY_MATERIAL and requested is not None:
        raise ValidationError("KeyMaterialId cannot be given with ImportType NEW_KEY_MATERIAL.")
    if requested is not None and requested != material_id:
        raise IncorrectKeyMaterialError(
            f"The key material does not match KeyMaterialId {requested} of {key.arn}."
        )
    first = KeyVersionRecord(key.key_id, 1, now, b"")
    known = materials.find(material_id)
    if not materials.bound:
        if import_type == EXISTING_KEY_MATERIAL:
            raise IncorrectKeyMaterialError(
                f"No key material was ever imported into {key.arn}: use ImportType "
                "NEW_KEY_MATERIAL (or none) for the first import."
            )
        return first
    if import_type != NEW_KEY_MATERIAL:
        if known is None:
            raise IncorrectKeyMaterialError(
                f"The key material is not key material previously imported into {key.arn}."
            )
        return known
    if key.key_spec != SYMMETRIC_DEFAULT:
        raise UnsupportedOperationError(
            f"{key.arn} is a {key.key_spec} key: only symmetric encryption keys take new key "
            "material; re-import its material with ImportType EXISTING_KEY_MATERIAL."
        )
    if known is not None:
        raise IncorrectKeyMaterialError(
            f"This key material is already associated with {key.arn} as {known.material_id}; "
            "re-import it with ImportType EXISTING_KEY_MATERIAL."
        )
    if materials.pending is not None:
        raise InvalidStateError(
            f"Key material {materials.pending.material_id} of {key.arn} is already pending "
            "rotation: rotate with RotateKeyOnDemand, or delete it with "
            "DeleteImportedKeyMaterial before importing other new material."
        )
    return KeyVersionRecord(
        key.key_id, materials.next_version, now, b"", "ON_DEMAND", pending_rotation=True
    )


def without_material(key: KeyRecord) -> KeyRecord:
    """``key`` while one of its materials is deleted or expired: ``PendingImport``.

    A key pending deletion keeps that state and comes back as ``PendingImport`` if its
    deletion is cancelled.
    """
    if key.key_state == PENDING_DELETION:
        return key.replace(state_before_deletion=PENDING_IMPORT)
    return key.replace(key_state=PENDING_IMPORT)


def material_expired(key: KeyRecord, now: float) -> bool:
    """Whether a material bound to ``key`` has passed its ``ValidTo``."""
    if key.origin != EXTERNAL or key.current_version == 0:
        return False
    deadline = key.materials_valid_to if key.materials_valid_to is not None else key.valid_to
    return deadline is not None and now >= deadline


def current_view(key: KeyRecord, now: float) -> KeyRecord:
    """Return ``key`` with expired imported material counted as deleted."""
    return without_material(key) if material_expired(key, now) else key
