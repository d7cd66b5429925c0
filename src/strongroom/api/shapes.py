"""JSON members <-> Python values for each KMS operation, driven by the service model.

AWS JSON 1.1 sends ``blob`` members as base64 strings. :class:`ShapeCodec` walks the
input and output shapes of every operation in the vendored botocore model once and keeps,
per operation, a decoder (check each member's JSON type, base64-decode blobs, drop unknown
and ``null`` members) and an encoder (base64-encode the blob members of a response).
A type mismatch or bad base64 is a ``SerializationException``, as AWS answers it; lengths,
ranges and patterns are the key service's to check.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable, Mapping
from typing import Any

from strongroom.errors import ProtocolError
from strongroom.kms.wire_model import KMS_MODEL_PATH, read_service_model

MODEL_PATH = KMS_MODEL_PATH
USER_KEYS_MODEL_PATH = ("kms", "strongroom-userkeys-2024-06-01.json")
"""Strongroom's user-key operations, a model in the same format (target StrongroomUserKeys)."""
MESH_MODEL_PATH = ("mesh", "strongroom-mesh-2026-11-29.json")
"""The mesh authority's operations, a model in the same format (target StrongroomMesh)."""
SERIALIZATION = "SerializationException"
_b2a = binascii.b2a_base64

Decoder = Callable[[Any], Any]
Encoder = Callable[[Any], Any]


def _mismatch(expected: str) -> ProtocolError:
    return ProtocolError(SERIALIZATION, f"A member of the request is not a valid {expected}.")


def _string(value: Any) -> Any:
    if type(value) is not str:
        raise _mismatch("string")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _mismatch("string") from None
    return value


def _integer(value: Any) -> Any:
    if type(value) is not int:
        raise _mismatch("integer")
    return value


def _number(value: Any) -> Any:
    if type(value) not in (int, float):
        raise _mismatch("number")
    return value


def _boolean(value: Any) -> Any:
    if type(value) is not bool:
        raise _mismatch("boolean")
    return value


def _blob(value: Any) -> Any:
    if type(value) is not str:
        raise _mismatch("base64-encoded blob")
    if len(value) % 4:
        raise ProtocolError(SERIALIZATION, "A blob member of the request is not valid base64.")
    try:
        # base64.b64decode(value, validate=True) without its two Python frames
        return binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError):
        raise ProtocolError(
            SERIALIZATION, "A blob member of the request is not valid base64."
        ) from None


def _timestamp(value: Any) -> Any:
    if type(value) not in (int, float, str):
        raise _mismatch("timestamp")
    return value


def _encode_blob(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return _b2a(value, newline=False).decode("ascii")  # base64.b64encode, unwrapped
    return value


_SCALAR_DECODERS: dict[str, Decoder] = {
    "string": _string,
    "integer": _integer,
    "long": _integer,
    "float": _number,
    "double": _number,
    "boolean": _boolean,
    "blob": _blob,
    "timestamp": _timestamp,
}


def _struct_decoder(members: dict[str, Decoder]) -> Decoder:
    def decode(value: Any) -> Any:
        if type(value) is not dict:
            raise _mismatch("structure")
        out = {}
        for name, item in value.items():
            member = members.get(name)
            if member is not None and item is not None:
                out[name] = member(item)
        return out

    return decode


def _list_decoder(item_decoder: Decoder) -> Decoder:
    def decode(value: Any) -> Any:
        if type(value) is not list:
            raise _mismatch("list")
        return [item_decoder(item) for item in value]

    return decode


def _map_decoder(value_decoder: Decoder) -> Decoder:
    def decode(value: Any) -> Any:
        if type(value) is not dict:
            raise _mismatch("map")
        return {_string(key): value_decoder(item) for key, item in value.items()}

    return decode


def _struct_encoder(members: dict[str, Encoder]) -> Encoder:
    def encode(value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        out = dict(value)
        for name, member in members.items():
            item = out.get(name)
            if item is not None:
                out[name] = member(item)
        return out

    return encode


def _list_encoder(item_encoder: Encoder) -> Encoder:
    def encode(value: Any) -> Any:
        return [item_encoder(item) for item in value] if isinstance(value, list) else value

    return encode


def _map_encoder(value_encoder: Encoder) -> Encoder:
    def encode(value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return {key: value_encoder(item) for key, item in value.items()}

    return encode


class _Builder:
    """Turns shape names into decoders and encoders, each shape once (recursion-safe)."""

    def __init__(self, shapes: Mapping[str, Mapping[str, Any]]) -> None:
        self._shapes = shapes
        self._decoders: dict[str, Decoder] = {}
        self._encoders: dict[str, Encoder | None] = {}
        self._in_progress: set[str] = set()

    def decoder(self, name: str) -> Decoder:
        """Return the decoder of shape ``name``."""
        found = self._decoders.get(name)
        if found is not None:
            return found
        shape = self._shapes[name]
        kind = shape["type"]
        if kind == "structure":
            members: dict[str, Decoder] = {}
            found = self._decoders[name] = _struct_decoder(members)
            for member, ref in shape.get("members", {}).items():
                members[member] = self.decoder(ref["shape"])
        elif kind == "list":
            found = _list_decoder(self.decoder(shape["member"]["shape"]))
        elif kind == "map":
            found = _map_decoder(self.decoder(shape["value"]["shape"]))
        else:
            found = _SCALAR_DECODERS[kind]
        self._decoders[name] = found
        return found

    def encoder(self, name: str) -> Encoder | None:
        """Return the encoder of shape ``name``, or ``None`` if it holds no blob."""
        if name in self._encoders:
            return self._encoders[name]
        if name in self._in_progress:
            return None  # a cycle: the outer walk covers the blobs on it
        self._in_progress.add(name)
        shape = self._shapes[name]
        kind = shape["type"]
        found: Encoder | None = None
        if kind == "blob":
            found = _encode_blob
        elif kind == "structure":
            members = {
                member: enc
                for member, ref in shape.get("members", {}).items()
                if (enc := self.encoder(ref["shape"])) is not None
            }
            found = _struct_encoder(members) if members else None
        elif kind == "list":
            inner = self.encoder(shape["member"]["shape"])
            found = _list_encoder(inner) if inner else None
        elif kind == "map":
            inner = self.encoder(shape["value"]["shape"])
            found = _map_encoder(inner) if inner else None
        self._in_progress.discard(name)
        self._encoders[name] = found
        return found


def _empty_input(value: Any) -> Any:
    if type(value) is not dict:
        raise _mismatch("structure")
    return {}


class ShapeCodec:
    """Per-operation request decoders and response encoders of the KMS JSON protocol."""

    def __init__(self, model: Mapping[str, Any]) -> None:
        builder = _Builder(model["shapes"])
        self._decoders: dict[str, Decoder] = {}
        self._encoders: dict[str, Encoder | None] = {}
        for name, operation in model["operations"].items():
            shape_in = operation.get("input", {}).get("shape")
            shape_out = operation.get("output", {}).get("shape")
            self._decoders[name] = builder.decoder(shape_in) if shape_in else _empty_input
            self._encoders[name] = builder.encoder(shape_out) if shape_out else None
        self.operations: frozenset[str] = frozenset(self._decoders)
        self.target_prefix: str = str(model["metadata"]["targetPrefix"])

    @classmethod
    def load(cls, path: tuple[str, ...] = MODEL_PATH) -> ShapeCodec:
        """Build the codec from a model shipped inside the package (by default AWS KMS's)."""
        return cls(read_service_model(path))

    def decode_request(self, operation: str, body: Any) -> dict[str, Any]:
        """Check a parsed JSON body and return it with blob members as bytes."""
        decoded: dict[str, Any] = self._decoders[operation](body)
        return decoded

    def encode_response(self, operation: str, response: dict[str, Any]) -> dict[str, Any]:
        """Return ``response`` with its blob members base64-encoded, ready for JSON."""
        encoder = self._encoders.get(operation)
        if encoder is None:
            return response
        encoded: dict[str, Any] = encoder(response)
        return encoded
