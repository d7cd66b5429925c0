"""Memory: a 4 GiB stream encrypts and decrypts in under 100 MiB of peak RSS.

The work runs in a fresh interpreter whose own peak RSS (VmHWM) is measured: a generator-backed
source feeds encrypt_stream, whose output goes through a pipe into decrypt_stream in
another thread, whose output is compared with the source pattern as it arrives.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = r"""
import fcntl, io, os, resource, struct, sys, threading, time
from strongroom.data import decrypt_stream, encrypt_stream

TOTAL, C = int(sys.argv[1]), 1 << 20
KEY = bytes(range(32))
BLOCK = bytes(range(256)) * (C // 256)


class Pattern(io.RawIOBase):
    # TOTAL bytes made on the fly: every MiB is BLOCK with its index in the first 8 bytes.
    def __init__(self):
        self.pos = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        view = memoryview(buffer).cast("B")
        n = min(len(view), TOTAL - self.pos)
        done = 0
        while done < n:
            index, offset = divmod(self.pos, C)
            take = min(n - done, C - offset)
            view[done : done + take] = BLOCK[offset : offset + take]
            if offset < 8:
                head = struct.pack(">Q", index)[offset:]
                view[done : done + min(len(head), take)] = head[:take]
            done += take
            self.pos += take
        return n


class Checker:
    def __init__(self):
        self.expected = Pattern()
        self.seen = 0

    def write(self, data):
        want = bytearray(len(data))
        self.expected.readinto(want)
        if bytes(data) != want:
            raise AssertionError("plaintext mismatch at %d" % self.seen)
        self.seen += len(data)
        return len(data)


read_fd, write_fd = os.pipe()
fcntl.fcntl(write_fd, 1031, C)  # F_SETPIPE_SZ
errors = []


def produce():
    try:
        with open(write_fd, "wb", buffering=0) as sink:
            encrypt_stream(Pattern(), sink, KEY, b"wrapped", "key", {"test": "memory"})
    except BaseException as exc:
        errors.append(exc)


start = time.perf_counter()
thread = threading.Thread(target=produce)
thread.start()
checker = Checker()
with open(read_fd, "rb", buffering=0) as source:
    header = decrypt_stream(source, checker, lambda h: KEY, context={"test": "memory"})
thread.join()
assert not errors, errors
assert checker.seen == TOTAL, checker.seen
elapsed = time.perf_counter() - start
# VmHWM: this process's own peak RSS. ru_maxrss may carry the (v)forking parent's peak.
with open("/proc/self/status") as status:
    hwm = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(hwm, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, elapsed)
"""


def run(total: int) -> tuple[int, int, float]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(total)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    peak_kib, maxrss_kib, elapsed = done.stdout.split()
    return int(peak_kib), int(maxrss_kib), float(elapsed)


@pytest.mark.slow
def test_four_gib_stream_in_constant_memory() -> None:
    peak_kib, maxrss_kib, elapsed = run(4 << 30)
    assert peak_kib < 100 * 1024, f"peak RSS (VmHWM) {peak_kib} KiB"
    print(
        f"4 GiB encrypt+decrypt: peak RSS {peak_kib / 1024:.1f} MiB "
        f"(ru_maxrss {maxrss_kib / 1024:.1f} MiB), {elapsed:.1f} s"
    )
