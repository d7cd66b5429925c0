"""``bench/mesh.py --py-spy SECONDS``: where the two sidecars spend their time, by py-spy.

For keep-alive requests and for new connections (32 connections each), wrk loads the
sidecar path while ``py-spy record --nonblocking`` samples sidecar A and sidecar B (idle
samples, the event loop waiting in epoll, are left out). Time spent in C (OpenSSL,
uvloop, system calls) counts as the self time of the Python frame that called it;
``Runner.run`` self time is the event loop's own C code (callbacks, accept, connect,
close). Prints, per sidecar and load, the functions with the most samples on top of the
stack (self) and anywhere in it (inclusive, leaving out the frames every sample shares).
Needs py-spy (``pip install py-spy``) and ptrace rights.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections import Counter
from pathlib import Path
from typing import Any

TOP = 14


def _frame(raw: str) -> str:
    """``function (file:line)`` -> ``function (file)``: lines would split one function."""
    name, _, where = raw.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0].split('/')[-1]}" + (")" if where else "")


def summarize(raw: Path) -> tuple[int, Counter[str], Counter[str]]:
    """Total samples, self samples and inclusive samples per function of a raw profile."""
    total, own, inclusive = 0, Counter[str](), Counter[str]()
    for line in raw.read_text("utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_frame(f) for f in stack.split(";")]
        total += n
        own[frames[-1]] += n
        for name in set(frames[1:]):  # frames[0] is the process/thread name
            inclusive[name] += n
    return total, own, inclusive


def _record(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    command = [
        shutil.which("py-spy") or "py-spy",
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, round(seconds))),
        "--rate",
        "200",
        "--format",
        "raw",
        "--nonblocking",
        "-o",
        str(out),
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def profile_sidecars(
    stack: Any, scripts: dict[str, Path], seconds: float, folder: Path, keep: Path | None
) -> None:
    """Profile sidecar A and B under both loads; print the summaries."""
    from mesh import run_wrk

    if shutil.which("py-spy") is None:
        print("py-spy is not installed (pip install py-spy): no profile")
        return
    out_dir = keep or folder
    out_dir.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{stack.ports['sidecar_a']}/"
    for mode in ("keepalive", "new"):
        files = {name: out_dir / f"py-spy-{mode}-{name}.txt" for name in ("a", "b")}
        recorders = {
            name: _record(stack.procs[f"sidecar_{name}"].popen.pid, seconds, path)
            for name, path in files.items()
        }
        result: dict[str, float] = {}
        load = threading.Thread(
            target=lambda script=scripts[mode], out=result: out.update(
                run_wrk(url, script, 32, seconds + 2)
            )
        )
        load.start()
        for name, rec in recorders.items():
            _, err = rec.communicate()
            if rec.returncode != 0:
                print(f"py-spy on sidecar {name} failed: {err.decode(errors='replace')[-500:]}")
        load.join()
        rps = result.get("requests", 0) / (result.get("seconds") or 1)
        print(f"\n== py-spy, {mode}, 32 connections ({rps:,.0f} req/s under the profiler)")
        for name, path in files.items():
            if not path.exists():
                continue
            total, own, inclusive = summarize(path)
            print(f"-- sidecar {name.upper()}: {total} samples (not idle)")
            print("   self:")
            for func, n in own.most_common(TOP):
                print(f"   {n / total:6.1%}  {func}")
            print("   inclusive:")
            shared = [func for func, n in inclusive.items() if n >= 0.95 * total]
            for func, n in inclusive.most_common(TOP + len(shared)):
                if func not in shared:
                    print(f"   {n / total:6.1%}  {func}")
