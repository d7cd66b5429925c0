"""The AWS KMS service model (2014-11-01) and the checks it defines for every request.

``kms-2014-11-01.json`` beside this module is botocore's ``service-2.json`` for KMS with the
documentation strings removed (Apache-2.0, from the botocore package). It lists every
operation, member, type, length, range, pattern and enum; :class:`WireModel` checks a
request against it and reports violations the way AWS words them::

    1 validation error detected: Value at 'plaintext' failed to satisfy constraint:
    Member must have length greater than or equal to 1

A string value is quoted as AWS quotes it (``Value 'SM3' at 'keySpec' failed to satisfy
constraint: Member must satisfy enum value set: [...]``), unless it is a secret or a token;
blobs and sensitive members never are.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from strongroom.errors import ValidationError

KMS_MODEL_PATH = ("kms", "kms-2014-11-01.json")
"""Where AWS KMS's model is, inside the ``strongroom`` package."""
_BLOB_TYPES = (bytes, bytearray)
_NUMBER_TYPES = (int, float)
_UNBOUNDED = float("inf")


def read_service_model(path: tuple[str, ...]) -> dict[str, Any]:
    """Parse a botocore-format service model shipped inside the ``strongroom`` package.

    The one loader of the vendored models: AWS KMS's (``KMS_MODEL_PATH``), the user-key
    model and the mesh model; the request validator (:class:`WireModel`) and the API's
    JSON codec (:class:`strongroom.api.shapes.ShapeCodec`) are both built from it.
    """
    text = resources.files("strongroom").joinpath(*path).read_text("utf-8")
    model: dict[str, Any] = json.loads(text)
    for member in ("metadata", "shapes", "operations"):
        if not isinstance(model.get(member), dict):
            raise ValueError(f"{'/'.join(path)} is not a service model: no {member}")
    return model


def _anything(value: Any) -> bool:
    return True


_HIDDEN_STRINGS = frozenset({"GrantTokenType"})
"""String shapes whose values are credentials though the model does not mark them sensitive."""


def _shows_value(shape_name: str, shape: dict[str, Any]) -> bool:
    """Whether a validation message may quote a string value of this shape, as AWS does.

    Never for sensitive shapes (secrets, passwords) or bearer tokens; blobs are never shown.
    """
    return not shape.get("sensitive") and shape_name not in _HIDDEN_STRINGS


def _lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


@dataclass
class WireModel:
    """The parsed service model; build it once with :meth:`load` and share it."""

    shapes: dict[str, dict[str, Any]]
    operations: dict[str, dict[str, Any]]
    _patterns: dict[str, re.Pattern[str]] = field(default_factory=dict)
    _fast: dict[str, Callable[[Any], bool]] = field(default_factory=dict)
    _requests: dict[str, Callable[[Any], bool]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: tuple[str, ...] = KMS_MODEL_PATH) -> WireModel:
        """Read a vendored model from the package (by default AWS KMS's)."""
        raw = read_service_model(path)
        return cls(shapes=raw["shapes"], operations=raw["operations"])

    def input_shape(self, operation: str) -> str | None:
        """Return the input shape name of ``operation`` (``None`` if it takes none)."""
        op = self.operations.get(operation)
        if op is None or "input" not in op:
            return None
        return str(op["input"]["shape"])

    def output_shape(self, operation: str) -> str | None:
        """Return the output shape name of ``operation`` (``None`` if it returns none)."""
        op = self.operations.get(operation)
        if op is None or "output" not in op:
            return None
        return str(op["output"]["shape"])

    def validate(self, operation: str, request: dict[str, Any]) -> None:
        """Raise :class:`ValidationError` listing every way ``request`` breaks the model."""
        check = self._requests.get(operation)
        if check is None:
            name = self.input_shape(operation)
            check = _anything if name is None else self._checker(name)
            self._requests[operation] = check
        if check(request):
            return
        shape = self.input_shape(operation)
        if shape is None:
            return
        problems: list[str] = []
        self._check_structure(shape, request, "", problems)
        if problems:
            count = len(problems)
            noun = "error" if count == 1 else "errors"
            raise ValidationError(f"{count} validation {noun} detected: " + "; ".join(problems))

    def member_check(self, shape_name: str) -> Callable[[Any], bool]:
        """The compiled check of one shape: ``True`` only if the value breaks nothing."""
        return self._checker(shape_name)

    # -- fast path: one compiled predicate per shape, True only if nothing is wrong ---------

    def _checker(self, shape_name: str) -> Callable[[Any], bool]:
        found = self._fast.get(shape_name)
        if found is None:
            # a recursive shape reaches itself through this stand-in while it is compiled
            self._fast[shape_name] = lambda value: self._fast[shape_name](value)
            found = self._fast[shape_name] = self._compile(self.shapes[shape_name])
        return found

    def _compile(self, shape: dict[str, Any]) -> Callable[[Any], bool]:
        kind = shape["type"]
        # absent bounds become ones nothing crosses: one chained comparison, no call
        low = shape.get("min", -_UNBOUNDED)
        high = shape.get("max", _UNBOUNDED)

        if kind == "structure":
            required = tuple(shape.get("required", ()))
            members = {
                m: self._checker(spec["shape"]) for m, spec in shape.get("members", {}).items()
            }

            def structure(value: Any) -> bool:
                if not isinstance(value, dict):
                    return False
                for name in required:
                    if value.get(name) is None:
                        return False
                for name, item in value.items():
                    check = members.get(name)
                    if check is not None and item is not None and not check(item):
                        return False
                return True

            return structure
        if kind == "string":
            enum = frozenset(shape["enum"]) if "enum" in shape else None
            pattern = self._pattern(shape["pattern"]) if "pattern" in shape else None
            if enum is not None:
                return lambda v: isinstance(v, str) and low <= len(v) <= high and v in enum
            if pattern is not None:
                match = pattern.fullmatch
                return lambda v: (
                    isinstance(v, str) and low <= len(v) <= high and match(v) is not None
                )
            return lambda v: isinstance(v, str) and low <= len(v) <= high
        if kind == "blob":
            return lambda v: isinstance(v, _BLOB_TYPES) and low <= len(v) <= high
        if kind == "integer":
            return lambda v: not isinstance(v, bool) and isinstance(v, int) and low <= v <= high
        if kind == "boolean":
            return lambda v: isinstance(v, bool)
        if kind == "list":
            item = self._checker(shape["member"]["shape"])
            return lambda v: isinstance(v, list) and low <= len(v) <= high and all(map(item, v))
        if kind == "map":
            key, val = self._checker(shape["key"]["shape"]), self._checker(shape["value"]["shape"])
            return lambda v: (
                isinstance(v, dict)
                and low <= len(v) <= high
                and all(key(k) and val(x) for k, x in v.items())
            )
        if kind == "timestamp":
            return lambda v: isinstance(v, _NUMBER_TYPES)
        return _anything

    # -- slow path: every problem, worded as AWS words it --------------------------------

    def _pattern(self, pattern: str) -> re.Pattern[str]:
        compiled = self._patterns.get(pattern)
        if compiled is None:
            compiled = re.compile(pattern)
            self._patterns[pattern] = compiled
        return compiled

    def _check_structure(self, shape_name: str, value: Any, path: str, problems: list[str]) -> None:
        shape = self.shapes[shape_name]
        if not isinstance(value, dict):
            problems.append(f"Value at '{path or 'request'}' must be a structure")
            return
        for member in shape.get("required", []):
            if value.get(member) is None:
                where = f"{path}.{_lower_first(member)}" if path else _lower_first(member)
                problems.append(
                    f"Value null at '{where}' failed to satisfy constraint: Member must not be null"
                )
        for member, spec in shape.get("members", {}).items():
            if member in value and value[member] is not None:
                where = f"{path}.{_lower_first(member)}" if path else _lower_first(member)
                self._check(spec["shape"], value[member], where, problems)

    def _check(self, shape_name: str, value: Any, path: str, problems: list[str]) -> None:
        shape = self.shapes[shape_name]
        kind = shape["type"]
        prefix = f"Value at '{path}' failed to satisfy constraint: Member must"
        if kind == "structure":
            self._check_structure(shape_name, value, path, problems)
        elif kind == "string":
            if not isinstance(value, str):
                problems.append(f"{prefix} be a string")
                return
            if _shows_value(shape_name, shape):
                # AWS names the offending string (Value 'x' at 'keySpec' ...)
                prefix = f"Value '{value}' at '{path}' failed to satisfy constraint: Member must"
            self._check_length(shape, len(value), prefix, problems)
            if "enum" in shape and value not in shape["enum"]:
                allowed = ", ".join(shape["enum"])
                problems.append(f"{prefix} satisfy enum value set: [{allowed}]")
            if "pattern" in shape and not self._pattern(shape["pattern"]).fullmatch(value):
                problems.append(f"{prefix} satisfy regular expression pattern: {shape['pattern']}")
        elif kind == "blob":
            if not isinstance(value, bytes | bytearray):
                problems.append(f"{prefix} be binary data")
                return
            self._check_length(shape, len(value), prefix, problems)
        elif kind == "integer":
            if isinstance(value, bool) or not isinstance(value, int):
                problems.append(f"{prefix} be an integer")
                return
            # AWS names the offending number (never a string or blob: those may be secret).
            shown = f"Value '{value}' at '{path}' failed to satisfy constraint: Member must"
            if "min" in shape and value < shape["min"]:
                problems.append(f"{shown} have value greater than or equal to {shape['min']}")
            if "max" in shape and value > shape["max"]:
                problems.append(f"{shown} have value less than or equal to {shape['max']}")
        elif kind == "boolean":
            if not isinstance(value, bool):
                problems.append(f"{prefix} be a boolean")
        elif kind == "list":
            if not isinstance(value, list):
                problems.append(f"{prefix} be a list")
                return
            self._check_length(shape, len(value), prefix, problems)
            for index, item in enumerate(value):
                self._check(shape["member"]["shape"], item, f"{path}.{index + 1}.member", problems)
        elif kind == "map":
            if not isinstance(value, dict):
                problems.append(f"{prefix} be a map")
                return
            self._check_length(shape, len(value), prefix, problems)
            for key, item in value.items():
                self._check(shape["key"]["shape"], key, f"{path}.key", problems)
                self._check(shape["value"]["shape"], item, f"{path}.{key}.value", problems)
        elif kind == "timestamp" and not isinstance(value, int | float):
            problems.append(f"{prefix} be a timestamp")

    @staticmethod
    def _check_length(shape: dict[str, Any], length: int, prefix: str, out: list[str]) -> None:
        if "min" in shape and length < shape["min"]:
            out.append(f"{prefix} have length greater than or equal to {shape['min']}")
        if "max" in shape and length > shape["max"]:
            out.append(f"{prefix} have length less than or equal to {shape['max']}")

    def blob_paths(self, shape_name: str) -> Any:
        """Return a nested description of where blobs sit in a shape (for the API codec).

        The result is ``True`` for a blob, a dict member -> description for a structure,
        ``("list", description)`` / ``("map", description)`` for containers, and ``None``
        where no blob can occur.
        """
        shape = self.shapes[shape_name]
        kind = shape["type"]
        if kind == "blob":
            return True
        if kind == "structure":
            found = {
                member: sub
                for member, spec in shape.get("members", {}).items()
                if (sub := self.blob_paths(spec["shape"])) is not None
            }
            return found or None
        if kind == "list":
            sub = self.blob_paths(shape["member"]["shape"])
            return None if sub is None else ("list", sub)
        if kind == "map":
            sub = self.blob_paths(shape["value"]["shape"])
            return None if sub is None else ("map", sub)
        return None
