"""The generated message classes match the vendored models byte for byte, and round-trip."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, get_type_hints

from strongroom.api import wire_types
from strongroom.kms import ops as kms_ops
from strongroom.kms.messages import SHAPES
from strongroom.kms.messages.crypto import DecryptRequest, DecryptResponse
from strongroom.kms.ops import HANDLERS
from strongroom.kms.userkeys.api import USER_KEY_HANDLERS, load_user_keys_model
from strongroom.kms.userkeys.messages import SHAPES as USER_KEY_SHAPES
from strongroom.kms.wire_codec import MessageCodec, field_name
from strongroom.kms.wire_model import WireModel


def test_regenerating_gives_the_checked_in_modules() -> None:
    for path, text in wire_types.generate().items():
        assert path.read_text("utf-8") == text, f"{path} is stale: {wire_types.COMMAND}"


def test_check_reports_nothing_stale() -> None:
    assert wire_types.main(["--check"]) == 0


def test_field_names() -> None:
    assert field_name("CiphertextBlob") == "ciphertext_blob"
    assert field_name("AWSAccountId") == "aws_account_id"
    assert field_name("Count") == "count_"


def test_a_request_decodes_and_a_response_encodes_without_none() -> None:
    codec = MessageCodec(WireModel.load(), SHAPES)
    decode = codec.request_decoder("Decrypt")
    encode = codec.response_encoder("Decrypt")
    assert decode is not None and encode is not None
    request = decode(
        {"CiphertextBlob": bytearray(b"x"), "GrantTokens": ["t"], "EncryptionContext": {"a": "b"}}
    )
    assert request == DecryptRequest(
        ciphertext_blob=b"x", encryption_context={"a": "b"}, grant_tokens=("t",)
    )
    assert type(request.ciphertext_blob) is bytes
    response = DecryptResponse(key_id="arn", plaintext=b"p")
    assert encode(response) == {"KeyId": "arn", "Plaintext": b"p"}


def test_every_shape_of_every_operation_has_a_codec() -> None:
    model = WireModel.load()
    codec = MessageCodec(model, SHAPES)
    for operation in model.operations:
        if model.input_shape(operation) in SHAPES:
            codec.request_decoder(operation)
        if model.output_shape(operation) in SHAPES:
            codec.response_encoder(operation)


def test_every_handler_takes_and_returns_its_operations_messages() -> None:
    model = WireModel.load()
    for operation, handler in HANDLERS.items():
        hints = get_type_hints(handler)
        request = model.input_shape(operation)
        response = model.output_shape(operation)
        assert hints["req"] is SHAPES[str(request)], operation
        expected = type(None) if response is None else SHAPES[response]
        assert hints["return"] is expected, operation


def test_no_handler_indexes_a_request_dict() -> None:
    ops = Path(kms_ops.__file__).parent
    for path in sorted(ops.glob("*.py")):
        text = path.read_text("utf-8")
        assert "req[" not in text and "req.get(" not in text, path.name
        assert "dict[str, Any]" not in text, path.name


def test_every_user_key_handler_takes_and_returns_its_messages() -> None:
    model = load_user_keys_model()
    assert set(USER_KEY_HANDLERS) == set(model.operations)
    for operation, handler in USER_KEY_HANDLERS.items():
        hints = get_type_hints(handler)
        assert hints["req"] is USER_KEY_SHAPES[str(model.input_shape(operation))], operation
        assert hints["return"] is USER_KEY_SHAPES[str(model.output_shape(operation))], operation


class _SaysWhoWaits:
    """A reentrant lock that sets ``waiting`` when a thread other than its maker takes it."""

    def __init__(self, waiting: threading.Event) -> None:
        self._lock = threading.RLock()
        self._maker = threading.current_thread()
        self._waiting = waiting

    def __enter__(self) -> None:
        if threading.current_thread() is not self._maker:
            self._waiting.set()
        self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


def test_an_encoder_asked_for_while_another_thread_builds_it_waits_for_that_build() -> None:
    # Server threads answering their first Decrypts at once: one builds the response
    # encoder, another finds the recursive-shape stand-in meanwhile and must not call it
    # into itself (RecursionError) but wait for the build.
    progress = threading.Event()  # the other thread failed, or waits for the build
    outcome: list[object] = []

    def ask() -> None:
        try:
            encode = codec.response_encoder("Decrypt")
            assert encode is not None
            outcome.append(encode(DecryptResponse(key_id="arn", plaintext=b"p")))
        except RecursionError as exc:
            outcome.append(exc)
        finally:
            progress.set()

    other = threading.Thread(target=ask)

    class Codec(MessageCodec):
        def _build_encoder(self, shape_name: str) -> Any:
            if shape_name == "DecryptResponse" and not other.is_alive():
                other.start()  # it asks while this build is under way
                assert progress.wait(60)
            return super()._build_encoder(shape_name)

    codec = Codec(WireModel.load(), SHAPES)
    codec._lock = _SaysWhoWaits(progress)  # type: ignore[assignment]
    encode = codec.response_encoder("Decrypt")
    assert encode is not None
    other.join()
    assert outcome == [{"KeyId": "arn", "Plaintext": b"p"}]
