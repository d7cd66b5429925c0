"""Generate the typed message classes of the three vendored service models.

Every operation the key service, the user-key API and the mesh authority serve takes and
returns records generated from its model, so the model and the types cannot drift (a test
regenerates them and compares bytes)::

    python -m strongroom.api.wire_types --write     # rewrite the generated modules
    python -m strongroom.api.wire_types --check     # exit 1 if any differs from the model

The AWS KMS messages are grouped like their handlers (one module of
``strongroom.kms.messages`` per module of ``strongroom.kms.ops``; structures used by more
than one group in ``shared``); the user-key and mesh messages each fit one module.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strongroom.kms.wire_codec import field_name, member_order
from strongroom.kms.wire_model import KMS_MODEL_PATH, read_service_model

PACKAGE_DIR = Path(__file__).resolve().parent.parent
COMMAND = "python -m strongroom.api.wire_types --write"
_SCALARS = {
    "string": "str",
    "blob": "bytes",
    "integer": "int",
    "long": "int",
    "boolean": "bool",
    "timestamp": "float",
    "double": "float",
    "float": "float",
}


@dataclass(frozen=True, slots=True)
class Module:
    """One generated module: where it goes, its docstring, the operations it holds."""

    name: str
    summary: str
    operations: tuple[str, ...]
    shapes: tuple[str, ...] = ()
    """Nested shapes placed here although no operation of it is listed (shared ones)."""

    @property
    def path(self) -> Path:
        """The file of the module, inside the source tree of this installation."""
        return PACKAGE_DIR.joinpath(*self.name.split(".")[1:]).with_suffix(".py")


def _annotation(shapes: Mapping[str, Any], name: str) -> str:
    shape = shapes[name]
    kind = shape["type"]
    if kind == "structure":
        return name
    if kind == "list":
        return f"Sequence[{_annotation(shapes, shape['member']['shape'])}]"
    if kind == "map":
        key = _annotation(shapes, shape["key"]["shape"])
        return f"Mapping[{key}, {_annotation(shapes, shape['value']['shape'])}]"
    return _SCALARS[kind]


def nested_shapes(shapes: Mapping[str, Any], name: str, into: set[str]) -> set[str]:
    """Every structure shape reachable from ``name`` (``name`` itself included)."""
    shape = shapes[name]
    kind = shape["type"]
    if kind == "structure":
        if name in into:
            return into
        into.add(name)
        for spec in shape.get("members", {}).values():
            nested_shapes(shapes, spec["shape"], into)
    elif kind == "list":
        nested_shapes(shapes, shape["member"]["shape"], into)
    elif kind == "map":
        nested_shapes(shapes, shape["value"]["shape"], into)
    return into


def _import(module: str, names: list[str]) -> str:
    line = f"from {module} import {', '.join(names)}"
    if len(line) <= 100:
        return line
    return f"from {module} import (\n" + "".join(f"    {n},\n" for n in names) + ")"


def _header(summary: str, source: str) -> list[str]:
    first, _, rest = summary.partition("\n")
    lines = [f'"""{first}', ""]
    if rest:
        lines += [*textwrap.wrap(rest, 96), ""]
    lines += [f"Generated from ``{source}``", f"by ``{COMMAND}``; do not edit by hand."]
    return [*lines, '"""', "", "from __future__ import annotations", ""]


def _class_source(shapes: Mapping[str, Any], name: str, doc: str) -> list[str]:
    shape = shapes[name]
    required = set(shape.get("required", ()))
    lines = ["", "", f"class {name}(NamedTuple):", f'    """{doc}"""']
    members = member_order(shape)
    if members:
        lines.append("")
    for member in members:
        kind = _annotation(shapes, shape["members"][member]["shape"])
        field = field_name(member)
        if member in required:
            lines.append(f"    {field}: {kind}")
        else:
            lines.append(f"    {field}: {kind} | None = None")
    return lines


def _roles(model: Mapping[str, Any]) -> dict[str, str]:
    """Shape name -> its docstring, for the input and output shapes of every operation."""
    roles: dict[str, str] = {}
    for operation, spec in sorted(model["operations"].items()):
        for part, word in (("input", "Request"), ("output", "Response")):
            if part in spec:
                shape = spec[part]["shape"]
                doc = f"{word} of ``{operation}``"
                if shape != operation + word:
                    doc += f" (shape ``{shape}``)"
                roles.setdefault(shape, doc + ".")
    return roles


def module_source(
    model: Mapping[str, Any], source: str, module: Module, placed: Mapping[str, str]
) -> str:
    """The text of one generated module; ``placed`` maps every shape to its module's name."""
    shapes = model["shapes"]
    roles = _roles(model)
    own = sorted(shape for shape, where in placed.items() if where == module.name)
    top = [s for s in own if s in roles]
    nested = [s for s in own if s not in roles]
    body: list[str] = []
    for shape in top + nested:
        body += _class_source(shapes, shape, roles.get(shape, f"Shape ``{shape}`` of the model."))
    text = "\n".join(body)
    used = {
        other
        for shape in own
        for spec in shapes[shape].get("members", {}).values()
        for other in nested_shapes(shapes, spec["shape"], set())
        if placed[other] != module.name and other in text
    }
    head = _header(module.summary, source)
    typing = [name for name in ("Mapping", "Sequence") if f"{name}[" in text]
    if typing:
        head.append(f"from collections.abc import {', '.join(typing)}")
    head.append("from typing import NamedTuple")
    by_module: dict[str, list[str]] = {}
    for other in sorted(used):
        by_module.setdefault(placed[other], []).append(other)
    if by_module:
        head.append("")
    for where, names in sorted(by_module.items()):
        head.append(_import(where, names))
    return "\n".join(head) + "\n" + text + "\n"


def place(model: Mapping[str, Any], modules: Iterable[Module], shared: str) -> dict[str, str]:
    """Shape name -> module: with its operations' module, or ``shared`` if several use it."""
    placed: dict[str, str] = {}
    ops = model["operations"]
    for module in modules:
        for operation in module.operations:
            for part in ("input", "output"):
                if part in ops[operation]:
                    reach = nested_shapes(model["shapes"], ops[operation][part]["shape"], set())
                    for shape in reach:
                        where = placed.setdefault(shape, module.name)
                        if where != module.name:
                            placed[shape] = shared
    return placed


def registry_source(placed: Mapping[str, str], summary: str, source: str) -> str:
    """The text of a package ``__init__`` naming every generated class by its shape."""
    lines = [*_header(summary, source), "from typing import Any", ""]
    for module in sorted(set(placed.values())):
        lines.append(_import(module, sorted(s for s, m in placed.items() if m == module)))
    lines += ["", "SHAPES: dict[str, type[tuple[Any, ...]]] = {"]
    for shape in sorted(placed):
        lines.append(f'    "{shape}": {shape},')
    lines += ["}", '"""Every generated message class, by its shape name in the model."""', ""]
    return "\n".join(lines)


def _kms_modules() -> tuple[list[Module], str]:
    from strongroom.kms.ops import HANDLERS

    groups: dict[str, list[str]] = {}
    for operation, handler in HANDLERS.items():
        groups.setdefault(handler.__module__.rsplit(".", 1)[1], []).append(operation)
    modules = [
        Module(
            f"strongroom.kms.messages.{group}",
            f"Messages of the AWS KMS operations of :mod:`strongroom.kms.ops.{group}`.\n"
            + "Operations: "
            + ", ".join(sorted(operations))
            + ".",
            tuple(sorted(operations)),
        )
        for group, operations in sorted(groups.items())
    ]
    return modules, "strongroom.kms.messages.shared"


USER_KEYS = Module(
    "strongroom.kms.userkeys.messages",
    "Messages of the user-key operations (target ``StrongroomUserKeys``).",
    (),
)
MESH = Module(
    "strongroom.mesh.messages",
    "Messages of the mesh authority's operations (target ``StrongroomMesh``).",
    (),
)
USER_KEYS_MODEL = ("kms", "strongroom-userkeys-2024-06-01.json")
MESH_MODEL = ("mesh", "strongroom-mesh-2026-11-29.json")


def generate() -> dict[Path, str]:
    """Every generated file and its text, from the models shipped in the package."""
    files: dict[Path, str] = {}
    kms = read_service_model(KMS_MODEL_PATH)
    source = "/".join(KMS_MODEL_PATH)
    modules, shared = _kms_modules()
    placed = place(kms, modules, shared)
    shared_module = Module(shared, "Structures of the AWS KMS model used by several groups.", ())
    for module in [*modules, shared_module]:
        if module.name in placed.values():
            files[module.path] = module_source(kms, source, module, placed)
    package = PACKAGE_DIR / "kms" / "messages" / "__init__.py"
    files[package] = registry_source(
        placed, "Typed requests and responses of the AWS KMS operations.", source
    )
    for path, module in ((USER_KEYS_MODEL, USER_KEYS), (MESH_MODEL, MESH)):
        model = read_service_model(path)
        whole = Module(module.name, module.summary, tuple(sorted(model["operations"])))
        placed = place(model, [whole], module.name)
        text = module_source(model, "/".join(path), whole, placed)
        text += "\n\nSHAPES: dict[str, type[tuple[Any, ...]]] = {\n"
        text += "".join(f'    "{shape}": {shape},\n' for shape in sorted(placed))
        text += "}\n" + '"""Every generated message class, by its shape name in the model."""\n'
        text = text.replace("from typing import NamedTuple", "from typing import Any, NamedTuple")
        files[whole.path] = text
    return files


def main(argv: list[str] | None = None) -> int:
    """Write (``--write``) or compare (``--check``) the generated modules."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="rewrite the generated modules")
    action.add_argument("--check", action="store_true", help="exit 1 if any differs")
    args = parser.parse_args(argv)
    stale = []
    for path, text in generate().items():
        current = path.read_text("utf-8") if path.exists() else None
        if current != text:
            stale.append(path)
            if args.write:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, "utf-8")
    for path in stale:
        print(f"{'wrote' if args.write else 'stale'}: {path.relative_to(PACKAGE_DIR)}")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
