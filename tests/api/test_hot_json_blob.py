"""``HotJson.decrypt``'s inlined copy of :func:`blob_of` takes exactly what ``blob_of`` takes.

Decrypt decodes its ``CiphertextBlob`` without calling ``blob_of`` (one frame less per
request) and tests the size limit in its own condition. A recording hot service stands in
for the key service's: it sees the blob the JSON layer decoded, or is never called when the
layer refuses the body. For any value (base64 of sizes around ``MAX_CIPHERTEXT``, broken
padding, whitespace, non-ASCII, other JSON types) the layer hands over ``blob_of``'s bytes,
or nothing where ``blob_of`` gives ``None``; neither raises.
"""

from __future__ import annotations

import base64
from typing import cast

from hypothesis import example, given, settings
from hypothesis import strategies as st

from strongroom.api.backend import HotKeyService
from strongroom.api.hot_json import HotJson, blob_of
from strongroom.kms.caller import Caller
from strongroom.kms.hot_requests import MAX_CIPHERTEXT

CALLER = Caller(tenant="111122223333", principal_arn="arn:aws:iam::111122223333:user/parity")
REFUSED = object()


class RecordingHot:
    """Decrypt of a ``HotKeyService`` that records the blob it is given and declines."""

    def __init__(self) -> None:
        self.blobs: list[bytes] = []

    def decrypt(self, *args: object) -> None:
        """``decrypt(caller, request_id, blob, context, key_id)``, as ``HotJson`` calls it."""
        blob = args[2]
        assert type(blob) is bytes
        self.blobs.append(blob)


def _inline(value: object) -> object:
    """What ``HotJson.decrypt`` hands the hot service for this blob, or :data:`REFUSED`."""
    hot = RecordingHot()
    json_layer = HotJson(cast(HotKeyService, hot))
    assert json_layer.decrypt(CALLER, {"CiphertextBlob": value}, "req-1") is None
    assert len(hot.blobs) <= 1
    return hot.blobs[0] if hot.blobs else REFUSED


def _called(value: object) -> object:
    """What ``blob_of`` gives for this blob, :data:`REFUSED` for ``None``."""
    blob = blob_of(value, MAX_CIPHERTEXT)
    return REFUSED if blob is None else blob


def _b64(size: int) -> str:
    return base64.b64encode(bytes(range(256)) * (size // 256) + b"\x07" * (size % 256)).decode()


# base64 of sizes on both sides of the limit, then broken in the ways a client breaks it
_SIZES = st.integers(min_value=0, max_value=MAX_CIPHERTEXT + 8) | st.integers(
    min_value=MAX_CIPHERTEXT - 8, max_value=MAX_CIPHERTEXT + 8
)


@st.composite
def _encoded(draw: st.DrawFn) -> str:
    size = draw(_SIZES)
    text = base64.b64encode(draw(st.binary(min_size=size, max_size=size))).decode()
    damage = draw(st.sampled_from(["none", "drop", "insert", "replace", "strip", "pad"]))
    if damage == "none" or not text:
        return text
    at = draw(st.integers(min_value=0, max_value=len(text) - 1))
    odd = draw(st.sampled_from(["=", "==", " ", "\n", "-", "_", "é", "\x00", "A", "/", "+"]))
    if damage == "drop":
        return text[:at] + text[at + 1 :]
    if damage == "insert":
        return text[:at] + odd + text[at:]
    if damage == "replace":
        return text[:at] + odd + text[at + 1 :]
    if damage == "strip":
        return text.rstrip("=")
    return text + odd


_VALUES = (
    _encoded()
    | st.text(max_size=64)
    | st.text(alphabet="ABCDabcd0189+/=", max_size=64)
    | st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.binary(max_size=16)
    | st.lists(st.text(max_size=8), max_size=2)
    | st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=2)
)


@settings(max_examples=400)
@given(value=_VALUES)
@example(value=_b64(MAX_CIPHERTEXT))
@example(value=_b64(MAX_CIPHERTEXT + 1))
@example(value=_b64(MAX_CIPHERTEXT - 1))
@example(value=_b64(MAX_CIPHERTEXT + 2))
@example(value=_b64(1))
@example(value="")
@example(value="====")
@example(value="AA==AA==")
@example(value="AAAA\n")
@example(value=b"AAAA")
def test_decrypt_takes_the_blobs_blob_of_takes(value: object) -> None:
    assert _inline(value) == _called(value)


def test_the_limit_is_the_models() -> None:
    """The boundary itself: the limit's size is taken by both, one byte more by neither."""
    at_limit = _b64(MAX_CIPHERTEXT)
    over = _b64(MAX_CIPHERTEXT + 1)
    assert _inline(at_limit) == _called(at_limit) == base64.b64decode(at_limit)
    assert _inline(over) is REFUSED
    assert _called(over) is REFUSED
