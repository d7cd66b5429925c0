"""How long the ``strongroom`` command takes to start and finish small work (issue 18).

Measured side by side, interleaved round by round so the machine's load falls on every
command alike:

- ``python -c pass``: the interpreter alone, the floor of any Python command, and
  ``python -c 'import typer'``, the floor of a typer command line;
- ``strongroom --help`` with the eager ``main.py`` of before issue 18 (every command
  module imported at start), from git;
- ``strongroom --help`` and ``strongroom env`` now (command modules load on use);
- ``strongroom encrypt`` of a 6-byte file against a ``strongroom server`` on loopback
  (HTTPS, one GenerateDataKey round trip) and ``strongroom decrypt`` of the result (one
  Decrypt), and the AWS CLI's ``aws kms encrypt`` of the same file against the same
  server, the peer a user would otherwise reach for;
- ``--help`` and ``encrypt`` "through typer": the same commands through the typer app
  alone, as they ran before their fast starts.

Wall time and CPU time (user + system, of the child) per run; the table gives medians
and the ratio to the AWS CLI's median. Target: under 0.15 s for ``--help`` and for
``encrypt`` of a small file.

    python bench/cli_start.py [--rounds 15] [--no-write] [--raw cells.json]
"""

from __future__ import annotations

import argparse
import datetime
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_doc import DOC, ROOT, load_average, machine, publish, write_section

HEADING = "## CLI start (bench/cli_start.py)"
TARGET_SECONDS = 0.15
TYPER = (
    "import sys\nfrom strongroom.cli.main import build_app\n"
    "build_app()(sys.argv[1:], prog_name='strongroom')\n"
)
"""The typer command line alone, as before the fast starts (the "through typer" rows)."""
EAGER_COMMIT = "8cf80fd"
"""A commit whose ``src/strongroom/cli/main.py`` still imported every command module."""


@dataclass
class Cell:
    """All runs of one command."""

    name: str
    argv: list[str]
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    failures: int = 0


def run_once(cell: Cell, env: dict[str, str], cwd: Path) -> None:
    """Run ``cell.argv`` once; record wall and CPU seconds (or a failure)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        cell.argv, env=env, cwd=cwd, capture_output=True, timeout=120, check=False
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        cell.failures += 1
        sys.stderr.write(f"{cell.name}: exit {done.returncode}: {done.stderr.decode()[-400:]}\n")
        return
    cell.wall.append(wall)
    cell.cpu.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))


def eager_main(folder: Path) -> Path | None:
    """The eager ``main.py`` of :data:`EAGER_COMMIT` as a script, or ``None`` without git."""
    try:
        text = subprocess.run(
            ["git", "show", f"{EAGER_COMMIT}:src/strongroom/cli/main.py"],
            cwd=ROOT,
            capture_output=True,
            check=True,
            text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    path = folder / "eager_main.py"
    path.write_text(text, encoding="utf-8")
    return path


def section(cells: list[Cell], args: argparse.Namespace, started: str, load: str) -> str:
    """The ``docs/benchmarks.md`` section of this run."""
    peer = next((c for c in cells if c.name.startswith("aws kms encrypt")), None)
    peer_median = statistics.median(peer.wall) if peer and peer.wall else None
    rows = []
    for cell in cells:
        if not cell.wall:
            rows.append(f"| {cell.name} | - | - | - | - | - | failed {cell.failures}x |")
            continue
        median = statistics.median(cell.wall)
        ratio = f"{median / peer_median:.2f}" if peer_median else "-"
        rows.append(
            f"| {cell.name} | {len(cell.wall)} | {median * 1000:.0f} | {min(cell.wall) * 1000:.0f}"
            f" | {statistics.median(cell.cpu) * 1000:.0f} | {ratio} | "
            f"{'yes' if median < TARGET_SECONDS else 'no'} |"
        )
    command = "python bench/cli_start.py" + (
        f" --rounds {args.rounds}" if args.rounds != 15 else ""
    )
    return "\n".join(
        [
            HEADING,
            f"Command: `{command}` ({started}). Machine: {machine()}; load average {load} at "
            "the start.",
            "",
            "| command | runs | median wall ms | min wall ms | median CPU ms | wall / AWS CLI"
            " | median under 150 ms |",
            "|---|---:|---:|---:|---:|---:|---|",
            *rows,
            "",
            "Each round runs every command once, in turn, so the load of this shared machine",
            "falls on all of them alike; CPU is user + system time of the command's process,",
            "the steadier figure when other work shares the cores. `encrypt` and `aws kms",
            "encrypt` each make one HTTPS request to a `strongroom server` on loopback (a new",
            "TLS connection, GenerateDataKey or Encrypt); `encrypt` also writes the sealed",
            "file; `decrypt` opens it again (one Decrypt). The eager row is the `main.py` of",
            "before issue 18, which imported every command module (the key service, the",
            "server, the mesh, boto3) for any command. `import typer` is what a typer command",
            "pays before any of its own work: `--help`, `encrypt` and `decrypt` have a fast",
            "start that does not import it (nor rich, boto3, botocore or `http.client`; the",
            "help page is the one click prints, compared in tests/cli/test_fast_start.py);",
            'the "through typer" rows run the same commands through the typer app alone, as',
            "they ran before the fast starts.",
            "",
        ]
    )


def main() -> None:
    """Run the benchmark and publish its table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="3 rounds")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument("--raw", type=Path, default=None)
    args = parser.parse_args()
    rounds = 3 if args.quick else args.rounds

    import compileall

    import strongroom
    from strongroom.testing.server import ServerProcess, client_for, console_script

    # as `pip install` does: the package's bytecode exists before the first start (this
    # machine sets PYTHONDONTWRITEBYTECODE, which would make every start compile it)
    compileall.compile_dir(str(Path(strongroom.__file__).parent), quiet=1)
    script = console_script()
    aws = shutil.which("aws") or str(Path(sys.executable).parent / "aws")
    started = datetime.date.today().isoformat()
    load = load_average()
    with tempfile.TemporaryDirectory(prefix="cli-start-") as tmp:
        folder = Path(tmp)
        server = ServerProcess(folder / "data").start()
        try:
            info = server.info()
            key = client_for(info).create_key(Description="cli start")["KeyMetadata"]["Arn"]
            (folder / "small.txt").write_bytes(b"hello\n")
            env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
            env.update(
                AWS_ACCESS_KEY_ID=info.credentials["AccessKeyId"],
                AWS_SECRET_ACCESS_KEY=info.credentials["SecretAccessKey"],
                AWS_DEFAULT_REGION=info.credentials["Region"],
                AWS_ENDPOINT_URL_KMS=info.endpoint_url,
                AWS_CA_BUNDLE=str(info.ca_bundle),
                AWS_CONFIG_FILE=str(folder / "none"),
                AWS_SHARED_CREDENTIALS_FILE=str(folder / "none"),
                STRONGROOM_DATA_DIR=str(folder / "data"),
            )
            cells = [
                Cell("python -c pass", [sys.executable, "-c", "pass"]),
                Cell(
                    "python -c 'import typer' (the CLI framework)",
                    [sys.executable, "-c", "import typer"],
                ),
            ]
            eager = eager_main(folder)
            if eager is not None:
                cells.append(
                    Cell(
                        f"strongroom --help, eager main.py ({EAGER_COMMIT})",
                        [sys.executable, str(eager), "--help"],
                    )
                )
            cells += [
                Cell("strongroom --help", [script, "--help"]),
                Cell("strongroom --help through typer", [sys.executable, "-c", TYPER, "--help"]),
                Cell("strongroom env", [script, "env"]),
                Cell(
                    "strongroom encrypt (6 bytes)",
                    [script, "encrypt", "-k", key, "small.txt", "small.sr"],
                ),
                Cell(
                    "strongroom encrypt (6 bytes) through typer",
                    [sys.executable, "-c", TYPER, "encrypt", "-k", key, "small.txt", "small2.sr"],
                ),
                Cell("strongroom decrypt (6 bytes)", [script, "decrypt", "small.sr", "small.out"]),
                Cell(
                    "aws kms encrypt (6 bytes)",
                    [aws, "kms", "encrypt", "--key-id", key, "--plaintext", "fileb://small.txt"],
                ),
            ]
            for _ in range(rounds):
                for cell in cells:
                    run_once(cell, env, folder)
        finally:
            server.close()
    publish(
        section(cells, args, started, load),
        cells,
        args,
        lambda text, path: write_section(text, HEADING, path),
    )


if __name__ == "__main__":
    main()
