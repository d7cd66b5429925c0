"""Encryption at rest benchmark: chunked stream v1 against raw AES-GCM, cp and other tools.

    python bench/at_rest.py [--quick] [--runs N] [--no-write]

1. In memory: v1 encrypt / decrypt of one buffer against raw ``AESGCM`` (one key, counter
   nonces) on the same buffer with the same chunk size, both writing into a preallocated
   output buffer (so neither pays for page faults of a fresh buffer).
2. File to file (1 GiB, page cache warm): v1 encrypt / decrypt through
   ``strongroom.data.encrypt_stream`` / ``decrypt_stream`` against ``cp``, the AWS Encryption
   SDK for Python (suite AES_256_GCM_HKDF_SHA512_COMMIT_KEY, 64 KiB frames, raw AES master
   key), Tink streaming AEAD (AES256_GCM_HKDF_1MB) and ``age`` (X25519 recipient).

Runs are interleaved and the median is reported. MB/s = 10^6 bytes per second. The table is
printed and written to docs/benchmarks.md, section "Encryption at rest".
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import bench_doc
import cryptography
from cryptography.hazmat.backends.openssl.backend import backend as openssl_backend
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.crypto.stream import StreamSealer
from strongroom.crypto.stream_io import (
    StreamLayout,
    decrypt_buffer_into,
    encrypt_buffer_into,
)
from strongroom.data import decrypt_stream, encrypt_stream

MIB = 1 << 20
KEY = os.urandom(32)
DOC = bench_doc.DOC
SECTION = "## Encryption at rest"
Row = tuple[str, float, str]


def median_time(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved(fns: dict[str, Callable[[], object]], runs: int) -> dict[str, list[float]]:
    """Seconds of each run of each function, run in turn so that load hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():  # warm-up
        fn()
    for _ in range(runs):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def paired(slower: list[float], faster: list[float]) -> float:
    """Median over runs of ``slower[i] / faster[i]`` (neighbours in time, so fair under load)."""
    return statistics.median(a / b for a, b in zip(slower, faster, strict=True))


def mbps(size: int, seconds: float) -> float:
    return size / seconds / 1e6


# -- in memory ------------------------------------------------------------------------------


def in_memory(size: int, chunk: int, runs: int) -> list[Row]:
    data = memoryview(os.urandom(size))
    count = size // chunk
    out = memoryview(bytearray(size + (count + 1) * 16 + 4096))
    plain = memoryview(bytearray(size))
    raw = AESGCM(KEY)
    raw_ct = memoryview(bytearray(size + count * 16))

    def raw_encrypt() -> None:
        for i in range(count):
            raw.encrypt_into(
                i.to_bytes(12, "big"),
                data[i * chunk : (i + 1) * chunk],
                b"",
                raw_ct[i * (chunk + 16) : (i + 1) * (chunk + 16)],
            )

    def raw_decrypt() -> None:
        for i in range(count):
            raw.decrypt_into(
                i.to_bytes(12, "big"),
                raw_ct[i * (chunk + 16) : (i + 1) * (chunk + 16)],
                b"",
                plain[i * chunk : (i + 1) * chunk],
            )

    def v1_encrypt() -> None:
        sealer = StreamSealer(KEY, key_id="bench", wrapped_key=b"wrapped", chunk_size=chunk)
        encrypt_buffer_into(data, sealer, out)

    raw_encrypt()
    v1_encrypt()
    total = StreamLayout.ciphertext_length(
        StreamSealer(KEY, key_id="bench", wrapped_key=b"wrapped", chunk_size=chunk).header.size,
        chunk,
        size,
    )
    stream = out[:total]

    def v1_decrypt() -> None:
        decrypt_buffer_into(stream, lambda header: KEY, plain)

    t = interleaved(
        {"re": raw_encrypt, "ve": v1_encrypt, "rd": raw_decrypt, "vd": v1_decrypt}, runs
    )
    label = f"{chunk // 1024} KiB" if chunk < MIB else f"{chunk // MIB} MiB"
    rows: list[Row] = []
    for op, r, v in (("encrypt", "re", "ve"), ("decrypt", "rd", "vd")):
        raw_speed = mbps(size, statistics.median(t[r]))
        rows.append((f"in memory {op}, raw AESGCM, {label} chunks", raw_speed, ""))
        rows.append(
            (
                f"in memory {op}, v1 stream, {label} chunks",
                mbps(size, statistics.median(t[v])),
                f"{paired(t[r], t[v]):.0%} of raw",
            )
        )
    return rows


# -- file to file ---------------------------------------------------------------------------


def make_file(path: Path, size: int) -> None:
    with path.open("wb") as f:
        left = size
        while left:
            block = os.urandom(min(left, 64 * MIB))
            f.write(block)
            left -= len(block)


def v1_file(src: Path, enc: Path, dec: Path) -> dict[str, Callable[[], object]]:
    def encrypt() -> None:
        with src.open("rb") as fin, enc.open("wb") as fout:
            encrypt_stream(fin, fout, KEY, b"wrapped", "bench")

    def decrypt() -> None:
        with enc.open("rb") as fin, dec.open("wb") as fout:
            decrypt_stream(fin, fout, lambda header: KEY)

    return {"encrypt": encrypt, "decrypt": decrypt}


def esdk_file(src: Path, enc: Path, dec: Path) -> dict[str, Callable[[], object]]:
    import aws_encryption_sdk
    from aws_encryption_sdk.identifiers import (
        Algorithm,
        CommitmentPolicy,
        EncryptionKeyType,
        WrappingAlgorithm,
    )
    from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
    from aws_encryption_sdk.key_providers.raw import RawMasterKey

    master = RawMasterKey(
        provider_id="bench",
        key_id=b"bench-key",
        wrapping_key=WrappingKey(
            wrapping_algorithm=WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
            wrapping_key=KEY,
            wrapping_key_type=EncryptionKeyType.SYMMETRIC,
        ),
    )
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )

    def run(mode: str, source: Path, target: Path) -> None:
        options = {"frame_length": 65536, "algorithm": Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY}
        with (
            source.open("rb") as fin,
            target.open("wb") as fout,
            client.stream(
                mode=mode, source=fin, key_provider=master, **(options if mode == "e" else {})
            ) as stream,
        ):
            for part in stream:
                fout.write(part)

    return {"encrypt": lambda: run("e", src, enc), "decrypt": lambda: run("d", enc, dec)}


def tink_file(src: Path, enc: Path, dec: Path) -> dict[str, Callable[[], object]] | None:
    try:
        import tink
        from tink import streaming_aead
    except ImportError:
        return None
    streaming_aead.register()
    handle = tink.new_keyset_handle(streaming_aead.streaming_aead_key_templates.AES256_GCM_HKDF_1MB)
    primitive = handle.primitive(streaming_aead.StreamingAead)

    def encrypt() -> None:
        with (
            src.open("rb") as fin,
            enc.open("wb") as fout,
            primitive.new_encrypting_stream(fout, b"bench") as stream,
        ):
            while block := fin.read(MIB):
                stream.write(block)

    def decrypt() -> None:
        with (
            enc.open("rb") as fin,
            dec.open("wb") as fout,
            primitive.new_decrypting_stream(fin, b"bench") as stream,
        ):
            while block := stream.read(MIB):
                fout.write(block)

    return {"encrypt": encrypt, "decrypt": decrypt}


def age_file(src: Path, enc: Path, dec: Path, tmp: Path) -> dict[str, Callable[[], object]] | None:
    if shutil.which("age") is None or shutil.which("age-keygen") is None:
        return None
    identity = tmp / "age.key"
    subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
    recipient = subprocess.run(
        ["age-keygen", "-y", str(identity)], check=True, capture_output=True, text=True
    ).stdout.strip()

    def encrypt() -> None:
        subprocess.run(["age", "-r", recipient, "-o", str(enc), str(src)], check=True)

    def decrypt() -> None:
        subprocess.run(["age", "-d", "-i", str(identity), "-o", str(dec), str(enc)], check=True)

    return {"encrypt": encrypt, "decrypt": decrypt}


def files(size: int, runs: int, tmp: Path) -> list[Row]:
    src = tmp / "plain.bin"
    make_file(src, size)
    copy = tmp / "copy.bin"
    tools: dict[str, Callable[[Path, Path, Path], dict[str, Callable[[], object]] | None]] = {
        "v1 stream (strongroom.data)": v1_file,
        "AWS Encryption SDK 0x0478, 64 KiB frames": esdk_file,
        "Tink AES256_GCM_HKDF_1MB": tink_file,
        "age (X25519)": lambda s, e, d: age_file(s, e, d, tmp),
    }
    ops: dict[str, Callable[[], object]] = {
        "cp": lambda: subprocess.run(["cp", str(src), str(copy)], check=True)
    }
    missing = []
    for number, (name, factory) in enumerate(tools.items()):
        enc, dec = tmp / f"enc{number}.bin", tmp / f"dec{number}.bin"
        pair = factory(src, enc, dec)
        if pair is None:
            missing.append(name)
            continue
        pair["encrypt"]()
        pair["decrypt"]()
        if dec.read_bytes() != src.read_bytes():
            raise SystemExit(f"{name}: round trip mismatch")
        ops[f"encrypt|{name}"] = pair["encrypt"]
        ops[f"decrypt|{name}"] = pair["decrypt"]
    t = interleaved(ops, runs)
    cp_speed = mbps(size, statistics.median(t["cp"]))
    rows: list[Row] = [("file to file, cp", cp_speed, "")]
    first = next(iter(tools))
    for name in tools:
        if name in missing:
            rows.append((f"file to file, {name}", float("nan"), "not installed"))
            continue
        for op in ("encrypt", "decrypt"):
            times = t[f"{op}|{name}"]
            speed = mbps(size, statistics.median(times))
            if name == first:
                note = f"{paired(t['cp'], times):.0%} of cp"
            else:
                note = f"v1 is {paired(times, t[f'{op}|{first}']):.2f}x as fast"
            rows.append((f"file to file {op}, {name}", speed, note))
    return rows


# -- report ---------------------------------------------------------------------------------


def machine() -> str:
    """The machine line: the common part and this benchmark's libraries."""
    openssl = openssl_backend.openssl_version_text()
    return (
        f"{bench_doc.machine()}, cryptography {cryptography.__version__} ({openssl}); "
        f"load average {bench_doc.load_average()}"
    )


def render(rows: list[Row], command: str, setup: str) -> str:
    lines = [
        SECTION,
        f"Command: `{command}` ({time.strftime('%Y-%m-%d')}). Machine: {setup}.",
        "",
        "| what | MB/s | ratio |",
        "|---|---:|---|",
    ]
    for what, speed, note in rows:
        value = "-" if speed != speed else f"{speed:,.0f}"
        lines.append(f"| {what} | {value} | {note} |")
    lines += [
        "",
        "MB/s: medians of interleaved runs (10^6 bytes/s). Ratios: medians of the per-round",
        "ratios of neighbouring runs, which hold up better than the MB/s when other work",
        "shares the machine. Files in the page cache, no fsync.",
        "In memory: both sides write into preallocated buffers; v1 pays a header, an HKDF-Expand",
        "and an AES key schedule per chunk. File to file runs in one Python process",
        "(v1, AWS Encryption SDK, Tink) or as a process per run (cp, age).",
        "Targets (issue 4): v1 at least 90% of raw AES-GCM at 1 MiB chunks, file to file at least",
        "half of cp, faster than each other tool. The fixed cost of a chunk (HKDF-Expand about",
        "5.5 us and an AES key schedule about 4 us, measured alone) is a few percent of a 1 MiB",
        "chunk but a large share of a 64 KiB one: hence the 1 MiB default. age and cp run as",
        "processes, the rest in the benchmark's own Python process. Tink and age need",
        "`pip install '.[bench]'` and `apt-get install -y age`; a missing one shows as such.",
        "",
    ]
    return "\n".join(lines)


def write_section(text: str) -> None:
    """Put this benchmark's section into docs/benchmarks.md."""
    bench_doc.write_section(text, SECTION, DOC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer runs")
    parser.add_argument("--runs", type=int, default=None, help="runs per measurement")
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    args = parser.parse_args()
    runs = args.runs or (3 if args.quick else 5)
    memory_size = (32 if args.quick else 128) * MIB
    file_size = (256 if args.quick else 1024) * MIB
    rows: list[Row] = []
    for chunk in (MIB, 64 * 1024):
        rows += in_memory(memory_size, chunk, 4 * runs)
        print(*rows[-4:], sep="\n", flush=True)
    with tempfile.TemporaryDirectory(prefix="at_rest_", dir=os.environ.get("BENCH_DIR")) as tmp:
        rows += files(file_size, runs, Path(tmp))
    command = "python bench/at_rest.py" + (" --quick" if args.quick else "")
    text = render(rows, command, machine())
    print(text)
    if not args.no_write:
        write_section(text)


if __name__ == "__main__":
    sys.exit(main())
