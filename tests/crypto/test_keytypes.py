"""Key types: every key spec's type makes material its own import check accepts, and only it.

ML-KEM key types also encapsulate and decapsulate: any ciphertext of the parameter set's
length decapsulates (implicit rejection), any other length is refused.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.crypto.keytypes import SHARED_SECRET_BYTES, MlKemKeyType
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


MLKEM = [KEY_SPECS["ML_KEM_768"].key_type, KEY_SPECS["ML_KEM_1024"].key_type]
MLKEM_MATERIAL = {t.name: t.generate() for t in MLKEM if isinstance(t, MlKemKeyType)}


@pytest.mark.parametrize("key_type", MLKEM, ids=lambda t: t.name)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_ml_kem_decapsulates_any_ciphertext_of_its_length_and_no_other(
    key_type: MlKemKeyType, data: st.DataObject
) -> None:
    secret_material, public = MLKEM_MATERIAL[key_type.name]
    assert public is not None
    shared, ciphertext = key_type.encapsulate(public)
    assert len(ciphertext) == key_type.ciphertext_bytes
    assert key_type.decapsulate(secret_material, ciphertext) == shared
    size = key_type.ciphertext_bytes
    # Any other bytes of the right length: implicit rejection, 32 bytes and no error.
    other = data.draw(st.binary(min_size=size, max_size=size))
    rejected = key_type.decapsulate(secret_material, other)
    assert len(rejected) == SHARED_SECRET_BYTES
    assert (rejected == shared) == (other == ciphertext)
    # Any other length: refused before the private key is touched.
    wrong = data.draw(st.binary(max_size=2 * size).filter(lambda b: len(b) != size))
    with pytest.raises(ValueError, match=f"{size} bytes"):
        key_type.decapsulate(secret_material, wrong)
