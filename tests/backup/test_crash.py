"""Crash safety: SIGKILL ``create``, ``forget`` and ``prune`` at random moments, many times.

After every kill, ``check --read-data`` passes (unindexed packs of a killed run are only
warnings), every snapshot acknowledged before is restorable with its exact content, and
a retry of the killed command completes. Kill moments come from a seeded RNG.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from strongroom.testing.e2e_server import RunningServer, add_tenant
from strongroom.testing.server import console_script

from .cli_support import Cli, env_for, kms_of

SEED = 15
MIN_ROUNDS = 10
MIN_KILLS = 4
MAX_ROUNDS = 24
MIB = 1 << 20


def digest_tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def mutate(src: Path, rng: random.Random, round_no: int) -> None:
    src.mkdir(exist_ok=True)
    for i in rng.sample(range(12), 3):
        (src / f"f{i:02d}.bin").write_bytes(rng.randbytes(MIB + rng.randrange(MIB)))
    (src / f"round-{round_no}.txt").write_text(f"round {round_no}\n" * 1000)


def killed(cli: Cli, args: list[str], delay: float) -> bool:
    """Run ``strongroom backup ARGS`` and SIGKILL it after ``delay`` s; whether it was killed."""
    proc = subprocess.Popen([console_script(), "backup", *args], cwd=cli.cwd, env=cli.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        proc.wait(timeout=delay)  # the random kill moment (it may finish before)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode in (0, -signal.SIGKILL), err.decode()
    return proc.returncode == -signal.SIGKILL


@pytest.mark.slow
def test_sigkill_create_forget_prune(server: RunningServer, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    creds = add_tenant(server.data_dir, "crash")
    cli = Cli(env_for(server, creds, tmp_path / "aws"), tmp_path)
    key = kms_of(server, creds).create_key()["KeyMetadata"]["Arn"]
    src = tmp_path / "src"
    repo = ["--repo", "repo"]
    cli("backup", "init", *repo, "--key", key)
    acked: dict[str, dict[str, str]] = {}  # snapshot id -> content digests
    kills = 0
    latest = 2.5  # the latest kill moment; halved after a command outran it (fast machines)
    took: dict[str, float] = {}  # how long each command last ran uncut (its retry), seconds
    round_no = 0
    # at least MIN_ROUNDS, and on until MIN_KILLS kills: on a fast machine (or with warm
    # bytecode caches) a command may finish before most kill moments
    while round_no < MIN_ROUNDS or (kills < MIN_KILLS and round_no < MAX_ROUNDS):
        mutate(src, rng, round_no)
        command = rng.choice(["create", "create", "forget", "prune"]) if acked else "create"
        args = {
            "create": ["create", *repo, "src"],
            "forget": ["forget", *repo, "--keep-last", str(rng.randint(1, 3))],
            "prune": ["prune", *repo],
        }[command]
        start = time.monotonic()
        # a moment inside the command's own run time, once that is known
        until = max(0.2, 0.9 * took[command]) if command in took else latest
        if killed(cli, args, rng.uniform(0.1, until)):
            kills += 1
        else:
            latest = max(0.2, latest / 2)
        # the repository is sound after the kill...
        report = cli.json("backup", "check", *repo, "--read-data", expect=0)
        assert report["ok"], (round_no, command, report["errors"])
        # ...every snapshot still listed restores exactly what was acknowledged...
        listed = {s["id"] for s in cli.json("backup", "ls", *repo)}
        for snapshot_id in sorted(listed & set(acked))[-2:]:
            out = tmp_path / f"restore-{round_no}-{snapshot_id[:8]}"
            cli("backup", "restore", *repo, snapshot_id, str(out))
            assert digest_tree(out / "src") == acked[snapshot_id], (round_no, command)
        # ...and the command, run again, completes
        retry_start = time.monotonic()
        retry = cli.json("backup", *args)
        took[command] = time.monotonic() - retry_start
        if command == "create":
            acked[retry["id"]] = digest_tree(src)
        for snapshot_id in list(acked):
            if snapshot_id not in {s["id"] for s in cli.json("backup", "ls", *repo)}:
                del acked[snapshot_id]  # forgotten, as asked
        assert time.monotonic() - start < 120
        round_no += 1
    assert kills >= MIN_KILLS  # the schedule really killed commands mid-way
    assert cli.json("backup", "check", *repo, "--read-data")["ok"]
    assert not [p for p in (tmp_path / "repo").rglob("*") if p.name.endswith(".sr-restore")]
    assert os.path.isdir(tmp_path / "repo")
