"""Messages of the AWS KMS operations of :mod:`strongroom.kms.ops.imports`.

Operations: DeleteImportedKeyMaterial, GetParametersForImport, ImportKeyMaterial.

Generated from ``kms/kms-2014-11-01.json``
by ``python -m strongroom.api.wire_types --write``; do not edit by hand.
"""

from __future__ import annotations

from typing import NamedTuple


class DeleteImportedKeyMaterialRequest(NamedTuple):
    """Request of ``DeleteImportedKeyMaterial``."""

    key_id: str
    key_material_id: str | None = None


class DeleteImportedKeyMaterialResponse(NamedTuple):
    """Response of ``DeleteImportedKeyMaterial``."""

    key_id: str | None = None
    key_material_id: str | None = None


class GetParametersForImportRequest(NamedTuple):
    """Request of ``GetParametersForImport``."""

    key_id: str
    wrapping_algorithm: str
    wrapping_key_spec: str


class GetParametersForImportResponse(NamedTuple):
    """Response of ``GetParametersForImport``."""

    import_token: bytes | None = None
    key_id: str | None = None
    parameters_valid_to: float | None = None
    public_key: bytes | None = None


class ImportKeyMaterialRequest(NamedTuple):
    """Request of ``ImportKeyMaterial``."""

    encrypted_key_material: bytes
    import_token: bytes
    key_id: str
    expiration_model: str | None = None
    import_type: str | None = None
    key_material_description: str | None = None
    key_material_id: str | None = None
    valid_to: float | None = None


class ImportKeyMaterialResponse(NamedTuple):
    """Response of ``ImportKeyMaterial``."""

    key_id: str | None = None
    key_material_id: str | None = None
