"""Backups: ``strongroom backup`` beside restic and borg (Debian's) on one generated corpus.

One run, all three tools, the same corpus (default 128 random 4 MiB files and 64
compressible 4 MiB log files, about 770 MiB) in the page cache, interleaved per phase:
first backup, incremental backup after changing one file and adding a duplicate, full
restore, ``check --read-data`` (borg: ``check --verify-data``), repository size and peak
RSS. Strongroom's keys come from a real ``strongroom server`` over HTTPS started here.
Then peak RSS of ``strongroom backup create -`` over a large generated stream (unique but
compressible data, ``--rss-gib``, default 10). Medians of ``--rounds`` rounds.

    python bench/backup.py                 # about 4 min with the default 3 rounds
    python bench/backup.py --quick         # 16 + 8 files, one round, 1 GiB stream
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_doc import DOC, load_average, machine, write_section

MIB = 1 << 20
HEADING = "## Backups (strongroom backup vs restic and borg)"
PEERS = {  # the measured figures on this kind of machine, for the targets
    "restic": {"first_mibs": 195.0, "incremental": 0.72, "restore": 1.91, "check": 1.99},
    "borg": {"first_mibs": 228.0, "incremental": 0.30, "restore": 3.87, "check": 2.95},
}
TOOLS = ("strongroom", "restic", "borg")


@dataclass
class Cell:
    """One tool's figures in one round."""

    tool: str
    round: int
    first: float = 0.0
    incremental: float = 0.0
    restore: float = 0.0
    check: float = 0.0
    repo_bytes: int = 0
    rss_kib: int = 0
    extra: dict[str, float] = field(default_factory=dict)


def make_corpus(root: Path, random_files: int, log_files: int) -> int:
    """Random and log files of 4 MiB each; their total size."""
    root.mkdir(parents=True)
    rng = random.Random(7)
    for i in range(random_files):
        (root / f"random-{i:03d}.bin").write_bytes(os.urandom(4 * MIB))
    words = [b"GET", b"POST", b"/api/v1/items", b"/login", b"200", b"404", b"INFO", b"WARN"]
    for i in range(log_files):
        lines = []
        size = 0
        n = 0
        while size < 4 * MIB:
            line = b"2026-01-%02d %s %s %d %s user=%d\n" % (
                1 + i % 28,
                rng.choice(words),
                rng.choice(words),
                n,
                rng.choice(words),
                rng.randrange(1000),
            )
            lines.append(line)
            size += len(line)
            n += 1
        (root / f"log-{i:03d}.log").write_bytes(b"".join(lines)[: 4 * MIB])
    return sum(p.stat().st_size for p in root.iterdir())


def run(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int]:
    """Run ``cmd`` in ``cwd``; (seconds, peak RSS KiB of the process).

    Through ``posix_spawn`` (vfork): a forked child would count this process's memory in
    its own peak RSS.
    """
    program = shutil.which(cmd[0], path=env.get("PATH"))
    if program is None:
        raise SystemExit(f"{cmd[0]} is not installed")
    with tempfile.TemporaryFile() as err:
        here = os.getcwd()
        os.chdir(cwd)
        try:
            start = time.perf_counter()
            pid = os.posix_spawn(
                program,
                cmd,
                env,
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                    (os.POSIX_SPAWN_DUP2, err.fileno(), 2),
                ],
            )
            _, status, usage = os.wait4(pid, 0)
            elapsed = time.perf_counter() - start
        finally:
            os.chdir(here)
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed ({code}):\n{err.read().decode()}")
    return elapsed, usage.ru_maxrss


def du(path: Path) -> int:
    """Bytes of the files under ``path``."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class Tool:
    """How one tool inits, backs up, restores and checks."""

    def __init__(self, name: str, env: dict[str, str], work: Path) -> None:
        self.name, self.env, self.work = name, env, work
        self.repo = work / f"repo-{name}"

    def commands(self, phase: str, out: Path) -> list[str]:
        r = str(self.repo)
        sr = ["strongroom", "backup"]
        table = {
            "strongroom": {
                "init": [*sr, "init", "--repo", r, "--key", self.env.get("BENCH_KEY", "")],
                "first": [*sr, "create", "--repo", r, "corpus"],
                "incremental": [*sr, "create", "--repo", r, "corpus"],
                "restore": [*sr, "restore", "--repo", r, "latest", str(out)],
                "check": [*sr, "check", "--repo", r, "--read-data"],
            },
            "restic": {
                "init": ["restic", "init", "-q", "--repo", r],
                "first": ["restic", "backup", "-q", "--repo", r, "corpus"],
                "incremental": ["restic", "backup", "-q", "--repo", r, "corpus"],
                "restore": ["restic", "restore", "-q", "--repo", r, "latest", "--target", str(out)],
                "check": ["restic", "check", "-q", "--repo", r, "--read-data"],
            },
            "borg": {
                "init": ["borg", "init", "-e", "repokey", r],
                "first": ["borg", "create", f"{r}::first", "corpus"],
                "incremental": ["borg", "create", f"{r}::second", "corpus"],
                "restore": [
                    "sh",
                    "-c",
                    f'mkdir -p "{out}" && cd "{out}" && borg extract {r}::second',
                ],
                "check": ["borg", "check", "--verify-data", r],
            },
        }
        return table[self.name][phase]


def tool_env(base: dict[str, str], work: Path, name: str) -> dict[str, str]:
    home = work / f"home-{name}"
    home.mkdir(parents=True, exist_ok=True)
    environ = {k: v for k, v in base.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {  # an installed package has its bytecode compiled: let Python cache it
        **environ,
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / "cache"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "RESTIC_PASSWORD": "bench-password",
        "BORG_PASSPHRASE": "bench-password",
        "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes",
        "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes",
    }


def one_round(n: int, corpus: Path, base_env: dict[str, str], tools: tuple[str, ...]) -> list[Cell]:
    """All phases for every tool, in a fresh temporary directory."""
    work = Path(tempfile.mkdtemp(prefix="bench-round-", dir=corpus.parent))
    cwd = corpus.parent  # every tool backs up "corpus" from there
    runners = [Tool(t, tool_env(base_env, work, t), work) for t in tools]
    cells = {t.name: Cell(t.name, n) for t in runners}
    changed = corpus / "random-000.bin"
    original = changed.read_bytes()
    try:
        for t in runners:
            run(t.commands("init", work), t.env, cwd)
        for t in runners:
            cells[t.name].first, cells[t.name].rss_kib = run(t.commands("first", work), t.env, cwd)
        changed.write_bytes(os.urandom(4 * MIB))
        shutil.copyfile(corpus / "random-001.bin", corpus / "duplicate.bin")
        for t in runners:
            cells[t.name].incremental, _ = run(t.commands("incremental", work), t.env, cwd)
        for t in runners:
            out = work / f"out-{t.name}"
            cells[t.name].restore, _ = run(t.commands("restore", out), t.env, work)
            shutil.rmtree(out)
        for t in runners:
            cells[t.name].check, _ = run(t.commands("check", work), t.env, work)
            cells[t.name].repo_bytes = du(t.repo)
    finally:
        changed.write_bytes(original)
        (corpus / "duplicate.bin").unlink(missing_ok=True)
        shutil.rmtree(work)
    return list(cells.values())


def stream_rss(gib: int, base_env: dict[str, str], scratch: Path) -> tuple[float, int]:
    """Peak RSS (KiB) and seconds of ``backup create -`` over ``gib`` GiB of unique data."""
    work = Path(tempfile.mkdtemp(prefix="bench-rss-", dir=scratch))
    env = tool_env(base_env, work, "strongroom")
    repo = str(work / "repo")
    run(["strongroom", "backup", "init", "--repo", repo, "--key", env["BENCH_KEY"]], env, work)
    generator = (
        "import sys,struct\n"
        "out=sys.stdout.buffer\n"
        f"for i in range({gib} * 1024):\n"
        "    out.write(struct.pack('>Q', i) * 131072)\n"
    )
    script = f'{sys.executable} -c "{generator}" | strongroom backup create --repo {repo} -'
    try:
        return run(["sh", "-c", script], env, work)
    finally:
        shutil.rmtree(work)


def median(cells: list[Cell], tool: str, attr: str) -> float:
    return statistics.median(getattr(c, attr) for c in cells if c.tool == tool)


def section(
    cells: list[Cell], size: int, rss: tuple[float, int] | None, args: argparse.Namespace
) -> str:
    mib = size / MIB

    def m(tool: str, attr: str) -> float:
        return median(cells, tool, attr)

    rows = []
    for tool in [t for t in TOOLS if any(c.tool == t for c in cells)]:
        first = median(cells, tool, "first")
        rows.append(
            f"| {tool} | {first:.2f} s ({mib / first:.0f} MiB/s) | "
            f"{m(tool, 'incremental'):.2f} s | {m(tool, 'restore'):.2f} s | "
            f"{m(tool, 'check'):.2f} s | {m(tool, 'repo_bytes') / MIB:.0f} MiB | "
            f"{m(tool, 'rss_kib') / 1024:.0f} MiB |"
        )
    command = " ".join(["python bench/backup.py", *sys.argv[1:]])
    lines = [
        HEADING,
        "",
        f"Machine: {machine()}; load average at the start {args.load_start}, at the end "
        f"{load_average()}.",
        f"Command: `{command}` ({args.rounds} "
        f"rounds, medians). Corpus: {args.random_files} random and {args.log_files} log files of "
        f"4 MiB ({mib:.0f} MiB) in the page cache; the incremental run follows a rewritten "
        "file and an added duplicate. Strongroom's keys come from a `strongroom server` over "
        "HTTPS on loopback (each command: one or more KMS calls, through the stdlib SigV4 "
        "client since the environment holds static keys; boto3 only for other credential "
        "sources); restic and borg use a "
        "password (repository defaults: restic 0.14 repo v2 with auto compression, borg "
        "`repokey`, lz4). Peak RSS is of the first backup.",
        "",
        *_load_note(args),
        "| tool | first backup | incremental | full restore | check --read-data | repository "
        "| peak RSS |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        "Each round (first / incremental / restore / check, seconds):",
        "",
        *(
            f"- round {n + 1}: "
            + "; ".join(
                f"{c.tool} {c.first:.2f} / {c.incremental:.2f} / {c.restore:.2f} / {c.check:.2f}"
                for c in cells
                if c.round == n
            )
            for n in range(args.rounds)
        ),
        "",
    ]
    if any(c.tool == "restic" for c in cells) and any(c.tool == "borg" for c in cells):
        sr = {
            a: median(cells, "strongroom", a)
            for a in ("first", "incremental", "restore", "check", "repo_bytes")
        }
        faster_first = min(median(cells, "restic", "first"), median(cells, "borg", "first"))
        lines += [
            "Targets (issue 15), this run:",
            "",
            f"- first backup {faster_first / sr['first']:.2f}x the faster peer "
            "(target at least 1.3x)",
            f"- incremental {sr['incremental']:.2f} s vs borg {m('borg', 'incremental'):.2f} s "
            "(target: no slower)",
            f"- restore {m('restic', 'restore') / sr['restore']:.2f}x restic "
            "(target at least 1.5x)",
            f"- check --read-data {sr['check']:.2f} s vs restic {m('restic', 'check'):.2f} s "
            "(target: no slower)",
            f"- repository {sr['repo_bytes'] / m('restic', 'repo_bytes'):.3f}x restic's "
            "(target at most 1.02x)",
        ]
        if rss is not None:
            lines.append(
                f"- peak RSS {rss[1] / 1024:.0f} MiB backing up a {args.rss_gib} GiB stream "
                f"in {rss[0]:.1f} s (target under 300 MiB for 10 GiB)"
            )
        lines.append("")
    return "\n".join(lines)


def _load_note(args: argparse.Namespace) -> list[str]:
    """A warning paragraph when other work shared the cores during the run."""
    busiest = max(float(x) for x in [*args.load_start.split(", "), *load_average().split(", ")])
    if busiest <= (os.cpu_count() or 1):
        return []
    return [
        f"Other work shared the {os.cpu_count()} cores during this run (load average up to "
        f"{busiest:.1f}): absolute times are several times those of a quiet machine. The "
        "three tools ran interleaved, phase by phase, so read the ratios.",
        "",
    ]


def kms_env(scratch: Path) -> tuple[object, dict[str, str]]:
    """Start a strongroom server; the environment of a tenant with a key (BENCH_KEY)."""
    import boto3

    from strongroom.testing.e2e_server import add_tenant, start_server
    from strongroom.testing.server import aws_env

    server_cm = start_server(scratch / "kms-data")
    server = server_cm.__enter__()
    creds = add_tenant(server.data_dir, "bench-backup")
    kms = boto3.client(
        "kms",
        endpoint_url=server.endpoint.url,
        verify=str(server.endpoint.ca_bundle),
        region_name="us-east-1",
        aws_access_key_id=creds.access_key_id,
        aws_secret_access_key=creds.secret_access_key,
    )
    key = kms.create_key()["KeyMetadata"]["Arn"]
    env = aws_env(
        {"AccessKeyId": creds.access_key_id, "SecretAccessKey": creds.secret_access_key},
        scratch,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CA_BUNDLE=str(server.endpoint.ca_bundle),
        AWS_ENDPOINT_URL_KMS=server.endpoint.url,
        BENCH_KEY=key,
    )
    return server_cm, env


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--random-files", type=int, default=128)
    parser.add_argument("--log-files", type=int, default=64)
    parser.add_argument("--rss-gib", type=int, default=10, help="0 skips the stream RSS run")
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--doc", type=Path, default=DOC)
    args = parser.parse_args()
    args.load_start = load_average()
    if args.quick:
        args.rounds, args.random_files, args.log_files, args.rss_gib = 1, 16, 8, 1
    tools = tuple(t for t in args.tools.split(",") if t)
    for tool in tools:
        if tool != "strongroom" and shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed: apt-get install -y restic borgbackup")
    with tempfile.TemporaryDirectory(prefix="bench-backup-") as tmp:
        scratch = Path(tmp)
        server_cm, env = kms_env(scratch)
        try:
            corpus = scratch / "corpus"
            size = make_corpus(corpus, args.random_files, args.log_files)
            cells: list[Cell] = []
            for n in range(args.rounds):
                cells += one_round(n, corpus, env, tools)
                print(
                    f"round {n + 1}: "
                    + ", ".join(
                        f"{c.tool} {c.first:.2f}/{c.incremental:.2f}/"
                        f"{c.restore:.2f}/{c.check:.2f} s"
                        for c in cells
                        if c.round == n
                    ),
                    flush=True,
                )
            rss = stream_rss(args.rss_gib, env, scratch) if args.rss_gib else None
        finally:
            server_cm.__exit__(None, None, None)  # type: ignore[attr-defined]
    text = section(cells, size, rss, args)
    print(text)
    if not args.no_write:
        write_section(text, HEADING, args.doc)
        print(f"wrote {args.doc}")


if __name__ == "__main__":
    main()
