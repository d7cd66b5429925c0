"""The model-driven codec: blobs found at any depth, types checked, nothing else touched."""

from __future__ import annotations

import base64
import functools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.api import ShapeCodec
from strongroom.errors import ProtocolError
from strongroom.testing.model_drift import vendored_model


@functools.cache
def shared_codec() -> ShapeCodec:
    return ShapeCodec.load()


@pytest.fixture
def codec() -> ShapeCodec:
    return shared_codec()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_model_has_every_kms_operation(codec: ShapeCodec) -> None:
    assert codec.operations == frozenset(vendored_model()["operations"])
    assert len(codec.operations) >= 56  # botocore 1.44: Encapsulate and Decapsulate
    assert {"Encrypt", "Decrypt", "GenerateDataKey", "ReEncrypt", "Encapsulate"} <= codec.operations
    assert codec.target_prefix == "TrentService"


@given(data=st.binary(max_size=64))
def test_nested_input_blobs_are_decoded(data: bytes) -> None:
    codec = shared_codec()
    request = {
        "CiphertextBlob": b64(data),
        "EncryptionContext": {"tenant": "a"},
        "Recipient": {
            "KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256",
            "AttestationDocument": b64(data),
        },
        "GrantTokens": ["t1"],
    }
    decoded = codec.decode_request("Decrypt", request)
    assert decoded["CiphertextBlob"] == data
    assert decoded["Recipient"]["AttestationDocument"] == data
    assert decoded["EncryptionContext"] == {"tenant": "a"}
    assert decoded["GrantTokens"] == ["t1"]


def test_output_blobs_are_encoded_at_any_depth(codec: ShapeCodec) -> None:
    response = {
        "KeyId": "k",
        "PrivateKeyCiphertextBlob": b"\x00\x01",
        "PrivateKeyPlaintext": b"\xff",
        "PublicKey": b"pub",
        "KeyPairSpec": "RSA_2048",
    }
    encoded = codec.encode_response("GenerateDataKeyPair", response)
    assert encoded == {
        "KeyId": "k",
        "PrivateKeyCiphertextBlob": "AAE=",
        "PrivateKeyPlaintext": "/w==",
        "PublicKey": "cHVi",
        "KeyPairSpec": "RSA_2048",
    }
    assert response["PublicKey"] == b"pub"  # the caller's dict is left alone


def test_responses_without_blobs_pass_through(codec: ShapeCodec) -> None:
    response = {"Keys": [{"KeyId": "k", "KeyArn": "arn"}], "Truncated": False}
    assert codec.encode_response("ListKeys", response) is response


@pytest.mark.parametrize(
    ("operation", "request_body"),
    [
        ("Encrypt", {"KeyId": "k", "Plaintext": "QUJ"}),
        ("Encrypt", {"KeyId": "k", "Plaintext": "QU JD"}),
        ("Encrypt", {"KeyId": "k", "Plaintext": "QUJD\n"}),
        ("Encrypt", {"KeyId": "k", "Plaintext": "ÀÀÀÀ"}),
        ("Encrypt", {"KeyId": True}),
        ("Encrypt", {"KeyId": "\ud800"}),
        ("Encrypt", {"EncryptionContext": ["a"]}),
        ("Encrypt", {"EncryptionContext": {"a": None}}),
        ("GenerateRandom", {"NumberOfBytes": 1.5}),
        ("GenerateRandom", {"NumberOfBytes": True}),
        ("GenerateRandom", {"NumberOfBytes": "8"}),
        ("CreateKey", {"BypassPolicyLockoutSafetyCheck": 1}),
        ("CreateKey", {"Tags": {"TagKey": "a"}}),
        ("ListKeys", []),
    ],
)
def test_type_mismatches_are_serialization_errors(
    codec: ShapeCodec, operation: str, request_body: Any
) -> None:
    with pytest.raises(ProtocolError) as info:
        codec.decode_request(operation, request_body)
    assert info.value.aws_type == "SerializationException"
    assert info.value.http_status == 400


def test_unknown_and_null_members_are_dropped(codec: ShapeCodec) -> None:
    decoded = codec.decode_request(
        "GenerateRandom", {"NumberOfBytes": 8, "CustomKeyStoreId": None, "Other": [1]}
    )
    assert decoded == {"NumberOfBytes": 8}
