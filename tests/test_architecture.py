"""The import rules of docs/architecture.md, checked on the source (an AST test, no network).

- ``crypto`` imports nothing of ours;
- ``ports`` imports nothing of ours but ``errors``;
- the kernel (``kms``) imports only ``crypto``, ``ports`` and ``errors`` of ours, and no
  module that does I/O (sockets, HTTP, databases, processes, files by path);
- the edges ``store``, ``rootkey`` and ``tls`` import ``ports``, never the kernel, and
  ``tls`` does not import ``mesh``;
- no cycles between packages;
- importing the edges loads no key-service code.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "strongroom"

IO_MODULES = frozenset(
    {
        "asyncio",
        "boto3",
        "botocore",
        "grpc",
        "http",
        "httpx",
        "os",
        "pathlib",
        "pkcs11",
        "psycopg",
        "requests",
        "shutil",
        "socket",
        "sqlite3",
        "ssl",
        "subprocess",
        "urllib",
    }
)


def _package(path: Path) -> str:
    """``src/strongroom/kms/ops/keys.py`` -> ``kms``; ``src/strongroom/errors.py`` -> ``errors``."""
    parts = path.relative_to(SRC).with_suffix("").parts
    return parts[0]


def _imports() -> dict[str, set[tuple[str, str]]]:
    """For each package: (imported module, importing file) of every import, nested ones too."""
    found: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for path in SRC.rglob("*.py"):
        package = _package(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                found[package].add((name, str(path.relative_to(SRC))))
    return found


IMPORTS = _imports()


def _ours(package: str) -> dict[str, set[str]]:
    """Which of our packages ``package`` imports, with the files that do."""
    used: dict[str, set[str]] = defaultdict(set)
    for name, where in IMPORTS[package]:
        if name.startswith("strongroom."):
            other = name.split(".")[1]
            if other != package:
                used[other].add(where)
    return used


def test_crypto_imports_nothing_of_ours() -> None:
    assert dict(_ours("crypto")) == {}


def test_ports_import_nothing_of_ours() -> None:
    assert set(_ours("ports")) <= {"errors"}


def test_the_kernel_imports_only_crypto_ports_and_errors() -> None:
    assert set(_ours("kms")) <= {"crypto", "ports", "errors"}, dict(_ours("kms"))


def test_the_kernel_does_no_io() -> None:
    for package in ("kms", "crypto", "ports"):
        io = sorted(
            (name, where) for name, where in IMPORTS[package] if name.split(".")[0] in IO_MODULES
        )
        assert io == [], package


def test_the_edges_use_ports_not_the_kernel() -> None:
    for edge in ("store", "rootkey", "tls"):
        used = _ours(edge)
        assert "kms" not in used, (edge, sorted(used["kms"]))
    assert "mesh" not in _ours("tls")


def test_no_cycles_between_packages() -> None:
    graph = {package: set(_ours(package)) for package in IMPORTS}

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                todo.extend(graph.get(node, ()))
        return False

    cycles = sorted(
        (a, b) for a, targets in graph.items() for b in targets if a < b and reaches(b, a)
    )
    assert cycles == []


def test_importing_the_edges_loads_no_service_code() -> None:
    code = (
        "import sys, strongroom.store, strongroom.rootkey, strongroom.tls, strongroom.ports\n"
        "print(sorted(m for m in sys.modules if m.startswith('strongroom.kms')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
