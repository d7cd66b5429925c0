"""What the installed botocore's AWS KMS model has that Strongroom's vendored model lacks.

Strongroom answers the AWS KMS API as described by the model it vendors
(``strongroom/kms/kms-2014-11-01.json``), not by whatever botocore happens to be installed:
a new botocore release that adds an operation or a member must not change what the server
accepts, nor turn the test suite red. It must be *noticed*, though. This module compares
the two models and says what differs; the test suite prints the report at the end of every
run (``tests/conftest.py``), ``STRONGROOM_MODEL_DRIFT=fail`` turns drift into a failing
test, and ``python -m strongroom.testing.model_drift`` prints it on demand::

    $ python -m strongroom.testing.model_drift
    AWS KMS model drift: botocore 1.45.0 has what Strongroom's vendored model lacks
      new operations: Foo
      changed shapes: KeySpec (enum +NEW_SPEC)

``python -m strongroom.testing.model_drift --write`` re-vendors the installed model
(documentation stripped, keys sorted) after the new parts are implemented or refused.
"""

from __future__ import annotations

import gzip
import json
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

VENDORED = ("kms", "kms-2014-11-01.json")
"""Where the vendored model lives inside the ``strongroom`` package."""


@dataclass(frozen=True)
class ModelDrift:
    """The differences between the installed botocore's KMS model and the vendored one."""

    botocore_version: str
    new_operations: tuple[str, ...]
    removed_operations: tuple[str, ...]
    changed_shapes: tuple[str, ...]

    @property
    def drifted(self) -> bool:
        """True when the installed model differs from the vendored one."""
        return bool(self.new_operations or self.removed_operations or self.changed_shapes)

    def report(self) -> str:
        """A few lines for a human: what differs, and what to do about it."""
        if not self.drifted:
            return f"AWS KMS model: the vendored model matches botocore {self.botocore_version}"
        lines = [
            f"AWS KMS model drift: botocore {self.botocore_version} differs from Strongroom's "
            "vendored model (the server keeps answering by the vendored one)"
        ]
        if self.new_operations:
            lines.append("  new operations: " + ", ".join(self.new_operations))
        if self.removed_operations:
            lines.append("  removed operations: " + ", ".join(self.removed_operations))
        if self.changed_shapes:
            lines.append("  changed shapes: " + ", ".join(self.changed_shapes))
        lines.append(
            "  implement or refuse them, then re-vendor: "
            "python -m strongroom.testing.model_drift --write"
        )
        return "\n".join(lines)


def strip_documentation(node: Any) -> Any:
    """``node`` without ``documentation`` members, dictionaries with sorted keys."""
    if isinstance(node, dict):
        return {
            key: strip_documentation(value)
            for key, value in sorted(node.items())
            if key != "documentation"
        }
    if isinstance(node, list):
        return [strip_documentation(value) for value in node]
    return node


def vendored_model() -> dict[str, Any]:
    """The model Strongroom serves, as vendored in the package."""
    text = resources.files("strongroom").joinpath(*VENDORED).read_text("utf-8")
    model: dict[str, Any] = json.loads(text)
    return model


def installed_model() -> tuple[str, dict[str, Any]]:
    """The installed botocore's version and its KMS model, documentation stripped."""
    import botocore

    folder = Path(botocore.__file__).parent / "data" / "kms" / "2014-11-01"
    plain, packed = folder / "service-2.json", folder / "service-2.json.gz"
    if packed.exists():
        raw = json.loads(gzip.decompress(packed.read_bytes()))
    else:
        raw = json.loads(plain.read_text("utf-8"))
    return str(botocore.__version__), strip_documentation(raw)


def compare(vendored: dict[str, Any], installed: dict[str, Any], version: str) -> ModelDrift:
    """Compare two stripped models."""
    ours, theirs = vendored["operations"], installed["operations"]
    shapes_ours, shapes_theirs = vendored["shapes"], installed["shapes"]
    changed = sorted(
        name
        for name in shapes_ours.keys() | shapes_theirs.keys()
        if strip_documentation(shapes_ours.get(name)) != shapes_theirs.get(name)
    )
    return ModelDrift(
        botocore_version=version,
        new_operations=tuple(sorted(theirs.keys() - ours.keys())),
        removed_operations=tuple(sorted(ours.keys() - theirs.keys())),
        changed_shapes=tuple(changed),
    )


def current_drift() -> ModelDrift:
    """The drift between the installed botocore and the vendored model."""
    version, installed = installed_model()
    return compare(vendored_model(), installed, version)


def write_vendored(path: Path) -> None:
    """Write the installed botocore's model, stripped and sorted, to ``path``."""
    _, installed = installed_model()
    text = json.dumps(installed, indent=0, sort_keys=True, separators=(",", ":"))
    path.write_text(text, "utf-8")


def main(argv: list[str]) -> int:
    """Print the drift report; with ``--write``, re-vendor the installed model."""
    if "--write" in argv:
        target = Path(str(resources.files("strongroom").joinpath(*VENDORED)))
        write_vendored(target)
        print(f"wrote {target}")
        return 0
    drift = current_drift()
    print(drift.report())
    return 1 if drift.drifted and "--check" in argv else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
