"""Typed messages at the handler boundary: a validated request dict in, a record out, and back.

Every operation of the three vendored models (AWS KMS, user keys, the mesh authority) has
generated message classes (``python -m strongroom.api.wire_types --write``): one immutable,
typed record per structure shape, fields in snake case, required members first and then the
optional ones in model order, optional members ``None`` when absent. :class:`MessageCodec`
builds, once per shape and from the same model, a decoder from the request dict (already
checked by :class:`~strongroom.kms.wire_model.WireModel`) to the record, and an encoder from
a response record to the dict callers get, omitting ``None`` members as AWS does.

The records are :class:`typing.NamedTuple` classes rather than frozen dataclasses: a frozen
dataclass is built through one ``object.__setattr__`` per field, about 3 µs for a Decrypt
request, an eighth of the whole call; a named tuple is built by one C call and read through
C field getters, and is just as immutable and as typed.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

from strongroom.kms.wire_model import WireModel

_WORD = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_TUPLE_NAMES = frozenset(dir(tuple))
"""Names a field cannot take (a named tuple's own methods): ``Count`` becomes ``count_``."""

Decoder = Callable[[dict[str, Any]], Any]
Encoder = Callable[[Any], dict[str, Any]]
_Convert = Callable[[Any], Any]


def field_name(member: str) -> str:
    """``CiphertextBlob`` -> ``ciphertext_blob``; ``AWSAccountId`` -> ``aws_account_id``."""
    name = _WORD.sub("_", member).lower()
    return name + "_" if name in _TUPLE_NAMES else name


def member_order(shape: Mapping[str, Any]) -> tuple[str, ...]:
    """The members of a structure in field order: required first, then the rest (model order)."""
    members = tuple(shape.get("members", {}))
    required = set(shape.get("required", ()))
    return tuple(m for m in members if m in required) + tuple(
        m for m in members if m not in required
    )


class MessageCodec:
    """Decoders and encoders between one model's dicts and its generated message classes.

    ``classes`` maps each structure shape name to its generated class. Building checks that
    every class has the fields the model gives its shape, in order, so a model changed
    without regenerating the classes fails at start, not in a handler.
    """

    def __init__(self, model: WireModel, classes: Mapping[str, type[tuple[Any, ...]]]) -> None:
        self._model = model
        self._classes = classes
        self._decoders: dict[str, Decoder] = {}
        self._encoders: dict[str, Encoder] = {}
        self._lock = threading.RLock()

    def request_decoder(self, operation: str) -> Decoder | None:
        """The decoder of ``operation``'s input (``None`` if it takes none).

        It checks the request while it decodes it, in one pass over the members present:
        each value must satisfy its member's compiled check, which is exactly
        :meth:`WireModel.validate`'s fast path. A request that does not pass goes to
        :meth:`WireModel.validate`, which raises ``ValidationException`` in AWS's words.
        """
        shape_name = self._model.input_shape(operation)
        if shape_name is None:
            return None
        cls = self._class(shape_name)
        shape = self._model.shapes[shape_name]
        names = member_order(shape)
        specs = shape.get("members", {})
        slots = {
            member: (
                index,
                self._model.member_check(specs[member]["shape"]),
                self._decode_member(specs[member]["shape"]),
            )
            for index, member in enumerate(names)
        }
        required = tuple(names.index(member) for member in shape.get("required", ()))
        blank = (None,) * len(names)
        unchecked = self.decoder(shape_name)
        validate = self._model.validate
        new = tuple.__new__

        def decode(value: dict[str, Any]) -> Any:
            if type(value) is dict:
                items = list(blank)
                valid = True
                for member, item in value.items():
                    slot = slots.get(member)
                    if slot is None or item is None:
                        continue  # unknown members are ignored, as the model's check does
                    index, check, convert = slot
                    if not check(item):
                        valid = False
                        break
                    items[index] = item if convert is None else convert(item)
                for index in required:
                    if items[index] is None:
                        valid = False
                if valid:
                    return new(cls, items)
            validate(operation, value)  # raises, naming every problem
            return unchecked(value)

        return decode

    def response_encoder(self, operation: str) -> Encoder | None:
        """The encoder of ``operation``'s output (``None`` if it returns none)."""
        shape = self._model.output_shape(operation)
        return None if shape is None else self.encoder(shape)

    def _class(self, shape_name: str) -> type[tuple[Any, ...]]:
        cls = self._classes[shape_name]
        expected = tuple(field_name(m) for m in member_order(self._model.shapes[shape_name]))
        fields = getattr(cls, "_fields", None)
        if fields != expected:
            raise TypeError(
                f"{cls.__name__} does not match shape {shape_name} of the model "
                "(regenerate: python -m strongroom.api.wire_types --write)"
            )
        return cls

    # -- dict -> record ------------------------------------------------------------------

    def decoder(self, shape_name: str) -> Decoder:
        """The decoder of a structure shape: a checked dict -> its record."""
        found = self._decoders.get(shape_name)
        return (
            found
            if found is not None
            else self._built(self._decoders, shape_name, self._build_decoder)
        )

    def _build_decoder(self, shape_name: str) -> Decoder:
        cls = self._class(shape_name)
        shape = self._model.shapes[shape_name]
        names = member_order(shape)
        converts = tuple(
            (index, convert)
            for index, member in enumerate(names)
            if (convert := self._decode_member(shape["members"][member]["shape"])) is not None
        )
        new = tuple.__new__
        if not converts:
            return lambda value: new(cls, map(value.get, names))

        def decode(value: dict[str, Any]) -> Any:
            items = list(map(value.get, names))
            for index, convert in converts:
                item = items[index]
                if item is not None:
                    items[index] = convert(item)
            return new(cls, items)

        return decode

    def _decode_member(self, shape_name: str) -> _Convert | None:
        shape = self._model.shapes[shape_name]
        kind = shape["type"]
        if kind == "structure":
            return self.decoder(shape_name)
        if kind == "blob":
            return bytes  # a bytearray from an in-process caller becomes immutable
        if kind == "list":
            item = self._decode_member(shape["member"]["shape"])
            return tuple if item is None else lambda v: tuple(map(item, v))
        if kind == "map":
            value = self._decode_member(shape["value"]["shape"])
            return None if value is None else lambda v: {k: value(x) for k, x in v.items()}
        return None

    # -- record -> dict ------------------------------------------------------------------

    def encoder(self, shape_name: str) -> Encoder:
        """The encoder of a structure shape: its record -> a dict without ``None`` members."""
        found = self._encoders.get(shape_name)
        return (
            found
            if found is not None
            else self._built(self._encoders, shape_name, self._build_encoder)
        )

    def _built(self, table: dict[str, Any], shape_name: str, build: Callable[[str], Any]) -> Any:
        """``build`` the decoder or encoder of ``shape_name`` into ``table``, once.

        A recursive shape reaches itself through a stand-in while it is built. Server
        threads may ask for the same shape at once: one builds, holding the lock; a thread
        that finds the stand-in waits for the lock instead of calling the stand-in forever.
        """
        with self._lock:  # reentrant: building reaches member shapes through here
            found = table.get(shape_name)
            if found is not None:
                return found

            def stand_in(value: Any) -> Any:
                built = table[shape_name]
                if built is stand_in:  # another thread is building it: wait for that
                    with self._lock:
                        built = table[shape_name]
                return built(value)

            table[shape_name] = stand_in
            try:
                table[shape_name] = found = build(shape_name)
            except BaseException:
                del table[shape_name]
                raise
            return found

    def _build_encoder(self, shape_name: str) -> Encoder:
        self._class(shape_name)
        shape = self._model.shapes[shape_name]
        names = member_order(shape)
        if not names:
            return lambda record: {}
        converts = {
            index: convert
            for index, member in enumerate(names)
            if (convert := self._encode_member(shape["members"][member]["shape"])) is not None
        }
        # Straight-line code per shape (as collections.namedtuple makes its own): a loop
        # over the fields costs a response about twice as much. Member names come from the
        # vendored model and enter the source only through repr().
        lines = [
            "def encode(record):",
            f"    ({''.join(f'v{i}, ' for i in range(len(names)))}) = record",
        ]
        lines.append("    out = {}")
        for index, member in enumerate(names):
            value = f"c{index}(v{index})" if index in converts else f"v{index}"
            lines.append(f"    if v{index} is not None:")
            lines.append(f"        out[{member!r}] = {value}")
        lines.append("    return out")
        namespace: dict[str, Any] = {f"c{index}": c for index, c in converts.items()}
        exec("\n".join(lines), namespace)  # noqa: S102 - source built above from the model
        encode: Encoder = namespace["encode"]
        return encode

    def _encode_member(self, shape_name: str) -> _Convert | None:
        shape = self._model.shapes[shape_name]
        kind = shape["type"]
        if kind == "structure":
            return self.encoder(shape_name)
        if kind == "list":
            item = self._encode_member(shape["member"]["shape"])
            return list if item is None else lambda v: list(map(item, v))
        if kind == "map":
            value = self._encode_member(shape["value"]["shape"])
            return dict if value is None else lambda v: {k: value(x) for k, x in v.items()}
        return None
