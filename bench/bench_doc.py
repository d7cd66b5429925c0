"""What every benchmark writes into ``docs/benchmarks.md``: the machine, and its own section.

Each benchmark owns one ``## `` section of the document; :func:`write_section` replaces it
(from its heading to the next ``## ``) or appends it, leaving the others as they are.
:func:`round_ratios` pairs a result with its peer's in the same round; :func:`publish`
prints a section, keeps the raw cells if asked and writes the document.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"


def machine() -> str:
    """``<CPU model>, <n> cores, <RAM> RAM, Linux <release>, Python <version>``."""
    model, ram = "unknown CPU", "? GiB"
    try:
        found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        model = found.group(1).strip() if found else model
        kib = re.search(r"^MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text(), re.M)
        ram = f"{int(kib.group(1)) / 2**20:.0f} GiB" if kib else ram
    except OSError:
        pass
    return (
        f"{model}, {os.cpu_count()} cores, {ram} RAM, Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, ``0.4, 0.9, 1.2``."""
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def write_section(section: str, heading: str, path: Path = DOC) -> None:
    """Replace the section that starts with ``heading`` (up to the next ``## ``), or append."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Strongroom benchmarks\n"
    start = text.find(heading + "\n")
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + section + ("" if end == -1 else "\n" + text[end + 1 :])
    path.write_text(text, encoding="utf-8")


def round_ratios(cells: Iterable[Any], baseline: Iterable[Any]) -> list[float]:
    """Each cell's ``rps`` over the baseline's in the same ``round`` (rounds both have)."""
    base = {c.round: c.rps for c in baseline}
    return [c.rps / base[c.round] for c in cells if base.get(c.round)]


def publish(
    section: str,
    cells: Iterable[Any],
    args: argparse.Namespace,
    write: Callable[[str, Path], None],
) -> None:
    """Print ``section``; keep every cell as JSON in ``args.raw`` if given; unless
    ``args.no_write``, write the section to ``args.doc`` with ``write``."""
    print(section)
    if args.raw:
        args.raw.write_text(json.dumps([c.__dict__ for c in cells], indent=1), encoding="utf-8")
    if not args.no_write:
        write(section, args.doc)
        print(f"wrote {args.doc}")
