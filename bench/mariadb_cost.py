"""Where InnoDB encryption's cost goes: one ``mariadbd`` per configuration, side by side.

``bench/databases.py`` compares MariaDB with keys from Strongroom, with MariaDB's own key file
and with no encryption. This one takes the key server out (MariaDB's ``file_key_management``
in every encrypted server) and turns InnoDB's encryption settings on one at a time, so the
table says which of them costs what: table encryption, redo-log encryption, temporary
tables, the background encryption threads and key-age rotation. Same statements as
``bench/databases.py`` (single-row INSERTs of a 150-byte row, ``--per-commit`` rows per
COMMIT, one client), rounds alternated across the servers, medians.

Run: ``python bench/mariadb_cost.py`` (``--no-write`` to leave docs/benchmarks.md alone).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_doc import load_average, machine, write_section

from strongroom.testing import mariadb

HEADING = "## MariaDB: where InnoDB encryption's cost goes (bench/mariadb_cost.py)"


@dataclass(frozen=True)
class Variant:
    """One server's InnoDB encryption settings (``None`` fields: encryption off)."""

    name: str
    settings: dict[str, str] | None


DOCUMENTED = {
    "innodb_encrypt_tables": "ON",
    "innodb_encrypt_log": "ON",
    "innodb_encrypt_temporary_tables": "ON",
    "innodb_encryption_threads": "4",
    "innodb_encryption_rotate_key_age": "1",
}
"""docs/mariadb.md's settings."""

VARIANTS = (
    Variant("off", None),
    Variant("docs/mariadb.md (all on)", DOCUMENTED),
    Variant("... no encryption threads", DOCUMENTED | {"innodb_encryption_threads": "0"}),
    Variant("... key age 0", DOCUMENTED | {"innodb_encryption_rotate_key_age": "0"}),
    Variant("... temporary tables off", DOCUMENTED | {"innodb_encrypt_temporary_tables": "OFF"}),
    Variant("... redo log off", DOCUMENTED | {"innodb_encrypt_log": "OFF"}),
)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(base: Path, variant: Variant, key_file: Path) -> mariadb.TempMariaDB:
    """A running ``mariadbd`` for ``variant`` with the benchmark's table."""
    directory = base / f"db{VARIANTS.index(variant)}"
    db = mariadb.TempMariaDB(directory, "unused", "unused", key_file, encrypt=False)
    write = db.write_config

    def write_variant() -> None:
        write()
        if variant.settings is not None:
            lines = [
                "plugin-load-add=file_key_management.so",
                f"file_key_management_filename={key_file}",
                *(f"{name}={value}" for name, value in variant.settings.items()),
            ]
            with db.config.open("a") as config:
                config.write("\n".join(lines) + "\n")

    db.write_config = write_variant  # type: ignore[method-assign]
    directory.mkdir(parents=True)
    db.install()
    if not db.start():
        raise SystemExit(f"mariadbd did not start for {variant.name}")
    db.sql("CREATE DATABASE bench")
    db.sql(
        "CREATE TABLE bench.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(200), n INT, KEY (n))"
    )
    return db


def insert_script(rows: int, per_commit: int) -> bytes:
    """``rows`` single-row INSERTs, a COMMIT every ``per_commit``."""
    statements = ["SET autocommit=0;"]
    for i in range(rows):
        statements.append(f"INSERT INTO bench.t (v, n) VALUES ('{'x' * 150}-{i}', {i});")
        if (i + 1) % per_commit == 0:
            statements.append("COMMIT;")
    statements.append("COMMIT;")
    return "\n".join(statements).encode()


def measure(db: mariadb.TempMariaDB, script: bytes, rows: int) -> tuple[float, float]:
    """Rows per second and ``mariadbd`` CPU microseconds per row for one round."""
    assert db.process is not None
    command = [mariadb.CLIENT, "--no-defaults", f"--socket={db.socket}", "-uroot", "bench"]
    before = cpu_seconds(db.process.pid)
    start = time.perf_counter()
    subprocess.run(command, input=script, check=True, capture_output=True, timeout=600)
    seconds = time.perf_counter() - start
    return rows / seconds, (cpu_seconds(db.process.pid) - before) / rows * 1e6


def main() -> None:
    """Run every variant, print the table and write it to docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=6, help="alternated rounds")
    parser.add_argument("--rows", type=int, default=5000, help="rows per round")
    parser.add_argument("--per-commit", type=int, default=100, help="rows per COMMIT")
    parser.add_argument("--no-write", action="store_true", help="leave docs/benchmarks.md")
    options = parser.parse_args()
    if not mariadb.available():
        raise SystemExit("mariadbd is not installed (apt-get install mariadb-server)")
    script = insert_script(options.rows, options.per_commit)
    results: dict[str, list[tuple[float, float]]] = {v.name: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory() as directory:
        base = Path(directory)
        key_file = base / "keys.txt"
        key_file.write_text("1;" + "22" * 32 + "\n")
        key_file.chmod(0o600)
        servers = [(v, start_server(base, v, key_file)) for v in VARIANTS]
        try:
            for _ in range(options.rounds):
                for variant, db in servers:
                    results[variant.name].append(measure(db, script, options.rows))
        finally:
            for _, db in servers:
                db.stop()
    off_rate = statistics.median(r for r, _ in results["off"])
    off_cpu = statistics.median(c for _, c in results["off"])
    rows = []
    for variant in VARIANTS:
        rate = statistics.median(r for r, _ in results[variant.name])
        cpu = statistics.median(c for _, c in results[variant.name])
        rows.append(
            f"| {variant.name} | {rate:,.0f} | {rate / off_rate:.2f} | {cpu:.0f} | "
            f"{cpu / off_cpu:.2f} |"
        )
    command = "python bench/mariadb_cost.py" + "".join(
        f" {a}" for a in sys.argv[1:] if a != "--no-write"
    )
    section = "\n".join(
        [
            HEADING,
            "",
            f"Machine: {machine()}; load average at the end {load_average()}.",
            f"Command: `{command}`. MariaDB {mariadb_version()} (Debian), keys from MariaDB's "
            f"own key file in every encrypted server, {options.rows} single-row INSERTs per "
            f"round, {options.per_commit} per COMMIT, one client, medians of "
            f"{options.rounds} alternated rounds. Each `...` row is docs/mariadb.md's "
            "configuration with one setting changed.",
            "",
            "| configuration | rows/s | vs off | mariadbd CPU us/row | CPU vs off |",
            "|---|---:|---:|---:|---:|",
            *rows,
            "",
        ]
    )
    print(section)
    if not options.no_write:
        write_section(section, HEADING)


def mariadb_version() -> str:
    """``10.11.19`` from ``mariadbd --version``."""
    out = subprocess.run(
        [mariadb.MARIADBD, "--version"], capture_output=True, text=True, check=False
    ).stdout
    parts = out.split("Ver ", 1)
    return parts[1].split("-", 1)[0] if len(parts) == 2 else "unknown"


if __name__ == "__main__":
    main()
