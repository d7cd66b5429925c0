"""Reading a YAML configuration with errors that name the file, the line and the key.

:func:`load_yaml` composes the document into YAML nodes (which remember their position)
and wraps the root in a :class:`Field`. Accessors (:meth:`Field.mapping`,
:meth:`Field.string`...) check the type and raise
:class:`~strongroom.errors.ValidationError` as ``proxy.yaml:12: inbound[0].allow[1]: ...``.
Unknown keys are errors too, so a typo never silently turns a rule off.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from strongroom.errors import ValidationError

MAX_CONFIG_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class Address:
    """A host (name or IP literal) and a TCP port."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(text: str, *, allow_port_zero: bool = False) -> Address:
    """``host:port`` or ``[v6]:port`` as an :class:`Address` (``ValueError`` if malformed)."""
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        ipaddress.IPv6Address(host)
        if not sep:
            raise ValueError("expected [IPv6]:port")
    else:
        host, sep, port = text.rpartition(":")
        if not sep or not host or ":" in host:
            raise ValueError("expected host:port")
    if not port.isdigit() or not (0 if allow_port_zero else 1) <= int(port) <= 65535:
        raise ValueError(f"bad port {port!r}")
    return Address(host, int(port))


class Field:
    """A YAML node with its position and its path from the document root."""

    def __init__(self, node: yaml.Node, path: str, source: str) -> None:
        self.node = node
        self.path = path
        self.source = source

    def error(self, message: str) -> ValidationError:
        """A ``ValidationError`` that points at this node."""
        line = self.node.start_mark.line + 1
        where = f"{self.path}: " if self.path else ""
        return ValidationError(f"{self.source}:{line}: {where}{message}")

    def _child(self, node: yaml.Node, suffix: str) -> Field:
        sep = "." if self.path and not suffix.startswith("[") else ""
        return Field(node, f"{self.path}{sep}{suffix}", self.source)

    def mapping(self, required: Iterable[str], optional: Iterable[str] = ()) -> dict[str, Field]:
        """The keys of a mapping; missing required or unknown keys are errors."""
        if not isinstance(self.node, yaml.MappingNode):
            raise self.error("expected a mapping")
        required, allowed = set(required), set(required) | set(optional)
        found: dict[str, Field] = {}
        for key_node, value_node in self.node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str) or key not in allowed:
                known = ", ".join(sorted(allowed))
                raise Field(key_node, self.path, self.source).error(
                    f"unknown key {key!r} (expected one of: {known})"
                )
            if key in found:
                raise Field(key_node, self.path, self.source).error(f"duplicate key {key!r}")
            found[key] = self._child(value_node, key)
        missing = sorted(required - found.keys())
        if missing:
            raise self.error(f"missing key {missing[0]!r}")
        return found

    def sequence(self) -> list[Field]:
        """The items of a list."""
        if not isinstance(self.node, yaml.SequenceNode):
            raise self.error("expected a list")
        return [self._child(item, f"[{i}]") for i, item in enumerate(self.node.value)]

    def string(self) -> str:
        """A non-empty scalar, as text."""
        node = self.node
        if not isinstance(node, yaml.ScalarNode) or node.tag.endswith(":null") or not node.value:
            raise self.error("expected a non-empty string")
        return str(node.value)

    def integer(self, low: int, high: int) -> int:
        """An integer in ``[low, high]``."""
        text = self.string()
        if not text.isdigit() or not low <= int(text) <= high:
            raise self.error(f"expected an integer from {low} to {high}")
        return int(text)

    def number(self, low: float, high: float) -> float:
        """A number in ``[low, high]``."""
        try:
            value = float(self.string())
        except ValueError:
            raise self.error("expected a number") from None
        if not low <= value <= high:
            raise self.error(f"expected a number from {low:g} to {high:g}")
        return value

    def boolean(self) -> bool:
        """``true`` or ``false``."""
        text = self.string().lower()
        if text not in ("true", "false"):
            raise self.error("expected true or false")
        return text == "true"

    def address(self, *, allow_port_zero: bool = False) -> Address:
        """``host:port`` (port 0 lets the system pick, for listeners only)."""
        try:
            return parse_address(self.string(), allow_port_zero=allow_port_zero)
        except ValueError as exc:
            raise self.error(f"not a host:port address: {exc}") from None

    def path_value(self, base: Path) -> Path:
        """A file path; relative paths are relative to the configuration file's folder."""
        path = Path(self.string())
        return path if path.is_absolute() else base / path


def load_yaml(path: Path) -> Field:
    """Compose ``path`` into a root :class:`Field` (syntax errors point at their line)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ValidationError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes")
    return parse_yaml(raw.decode("utf-8", errors="replace"), str(path))


def parse_yaml(text: str, source: str) -> Field:
    """Compose YAML ``text`` (named ``source`` in errors) into a root :class:`Field`."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f"{mark.line + 1}: " if mark is not None else ""
        raise ValidationError(f"{source}:{line}YAML syntax error: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ValidationError(f"{source}: YAML error: {exc}") from None
    if node is None:
        raise ValidationError(f"{source}: the configuration is empty")
    return Field(node, "", source)
