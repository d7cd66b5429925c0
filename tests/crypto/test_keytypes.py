"""Key types: every key spec's type makes material its own import check accepts, and only it."""

from __future__ import annotations

import pytest

from strongroom.kms.keyspec import KEY_SPECS

SPECS = sorted(KEY_SPECS)
FAST = [s for s in SPECS if not s.startswith("RSA_") or s == "RSA_2048"]


@pytest.mark.parametrize("spec", FAST)
def test_generated_material_passes_its_own_import_check(spec: str) -> None:
    key_type = KEY_SPECS[spec].key_type
    secret, public = key_type.generate()
    assert key_type.check_import(secret) == (secret, public)
    assert (public is not None) == key_type.has_public_key


@pytest.mark.parametrize("spec", FAST)
def test_material_of_another_type_is_refused(spec: str) -> None:
    key_type = KEY_SPECS[spec].key_type
    for other in FAST:
        if other == spec or KEY_SPECS[other].key_type == key_type:
            continue
        secret, _ = KEY_SPECS[other].key_type.generate()
        try:
            key_type.check_import(secret)
        except ValueError as exc:
            assert secret.hex() not in str(exc)  # never names the material
        else:  # symmetric and HMAC material are opaque bytes, checked by length only
            assert not key_type.has_public_key


def test_only_symmetric_keys_have_a_default_usage() -> None:
    assert [s for s in SPECS if KEY_SPECS[s].default_usage is not None] == ["SYMMETRIC_DEFAULT"]
