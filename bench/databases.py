"""KMIP front-end throughput and latency, and libmongocrypt data keys against Strongroom.

    python bench/databases.py [--requests 2000] [--no-doc]

A Strongroom KMIP server runs in its own process (SQLite store, local root key); clients
are processes, each with one TLS connection reused for every request (Get of a 32-byte
SecretData, AES-GCM Encrypt and Decrypt of 64 bytes), at 1 and 8 clients. Then
libmongocrypt (pymongocrypt) creates data keys and round-trips one field, p50.
Not measured yet: PyKMIP's own server as the peer, MariaDB inserts with encryption on/off.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from bench_doc import load_average, machine, write_section


def _serve(directory: str, ready: mp.Queue, stop: mp.Event) -> None:  # type: ignore[type-arg]
    from strongroom.testing.kmip import kmip_server

    with kmip_server(Path(directory), ("bench",)) as info:
        files = info.clients["bench"]
        ready.put((info.port, str(files.cert), str(files.key), str(files.ca)))
        stop.wait()


def _requests(port: int, cert: str, key: str, ca: str) -> dict[str, bytes]:
    from kmip.rawclient import connect, read_message, request, results

    from strongroom.kmip.tags import Operation, Tag
    from strongroom.kmip.ttlv import byte_string, enumeration, integer, structure, text
    from strongroom.testing.kmip import ClientFiles

    files = ClientFiles(Path(cert), Path(key), Path(ca), None)  # type: ignore[arg-type]
    secret = structure(
        Tag.SECRET_DATA,
        enumeration(Tag.SECRET_DATA_TYPE, 2),
        structure(
            Tag.KEY_BLOCK,
            enumeration(Tag.KEY_FORMAT_TYPE, 2),
            structure(Tag.KEY_VALUE, byte_string(Tag.KEY_MATERIAL, b"k" * 32)),
        ),
    )
    template = structure(
        Tag.TEMPLATE_ATTRIBUTE,
        structure(
            Tag.ATTRIBUTE,
            text(Tag.ATTRIBUTE_NAME, "Cryptographic Algorithm"),
            enumeration(Tag.ATTRIBUTE_VALUE, 3),
        ),
        structure(
            Tag.ATTRIBUTE,
            text(Tag.ATTRIBUTE_NAME, "Cryptographic Length"),
            integer(Tag.ATTRIBUTE_VALUE, 256),
        ),
    )
    with connect(port, files, ca) as sock:
        sock.sendall(
            request((1, 4), (Operation.REGISTER, [enumeration(Tag.OBJECT_TYPE, 7), secret]))
        )
        sid = (
            results(read_message(sock))[0]
            .find(Tag.RESPONSE_PAYLOAD)
            .find(Tag.UNIQUE_IDENTIFIER)
            .value
        )
        sock.sendall(
            request(
                (1, 4),
                (Operation.CREATE, [enumeration(Tag.OBJECT_TYPE, 2), template]),
                (Operation.ACTIVATE, []),
            )
        )
        kid = (
            results(read_message(sock))[0]
            .find(Tag.RESPONSE_PAYLOAD)
            .find(Tag.UNIQUE_IDENTIFIER)
            .value
        )
        sock.sendall(
            request(
                (1, 4),
                (
                    Operation.ENCRYPT,
                    [text(Tag.UNIQUE_IDENTIFIER, kid), byte_string(Tag.DATA, b"d" * 64)],
                ),
            )
        )
        out = results(read_message(sock))[0].find(Tag.RESPONSE_PAYLOAD)
    data, iv, tag = (
        out.find(t).value
        for t in (Tag.DATA, Tag.IV_COUNTER_NONCE, Tag.AUTHENTICATED_ENCRYPTION_TAG)
    )
    return {
        "Get": request((1, 4), (Operation.GET, [text(Tag.UNIQUE_IDENTIFIER, sid)])),
        "Encrypt": request(
            (1, 4),
            (
                Operation.ENCRYPT,
                [text(Tag.UNIQUE_IDENTIFIER, kid), byte_string(Tag.DATA, b"d" * 64)],
            ),
        ),
        "Decrypt": request(
            (1, 4),
            (
                Operation.DECRYPT,
                [
                    text(Tag.UNIQUE_IDENTIFIER, kid),
                    byte_string(Tag.DATA, data),
                    byte_string(Tag.IV_COUNTER_NONCE, iv),
                    byte_string(Tag.AUTHENTICATED_ENCRYPTION_TAG, tag),
                ],
            ),
        ),
    }


def _client(args: tuple[int, str, str, str, bytes, int]) -> list[float]:
    from kmip.rawclient import connect, read_message

    from strongroom.testing.kmip import ClientFiles

    port, cert, key, ca, message, n = args
    files = ClientFiles(Path(cert), Path(key), Path(ca), None)  # type: ignore[arg-type]
    latencies = []
    with connect(port, files, ca) as sock:
        for _ in range(n):
            start = time.perf_counter()
            sock.sendall(message)
            read_message(sock)
            latencies.append(time.perf_counter() - start)
    return latencies


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000, help="requests per cell")
    parser.add_argument("--no-doc", action="store_true", help="do not write docs/benchmarks.md")
    options = parser.parse_args()
    ctx = mp.get_context("spawn")
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        ready: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
        stop = ctx.Event()
        server = ctx.Process(target=_serve, args=(directory, ready, stop))
        server.start()
        port, cert, key, ca = ready.get(timeout=60)
        try:
            messages = _requests(port, cert, key, ca)
            with ctx.Pool(8) as pool:
                for op, message in messages.items():
                    for clients in (1, 8):
                        per = max(1, options.requests // clients)
                        jobs = [(port, cert, key, ca, message, per)] * clients
                        lat = [x for part in pool.map(_client, jobs) for x in part]
                        elapsed = sum(lat) / clients  # time inside requests, not process start-up
                        rows.append(
                            (
                                f"KMIP {op}",
                                clients,
                                len(lat) / elapsed,
                                _percentile(lat, 0.5),
                                _percentile(lat, 0.99),
                            )
                        )
                        print(rows[-1], flush=True)
            create, roundtrip = _mongocrypt(port, cert, key, ca)
        finally:
            stop.set()
            server.join(timeout=30)
    lines = [
        f"Command: `python bench/databases.py --requests {options.requests}`. "
        f"Machine: {machine()}; load average {load_average()}.",
        "",
        "| what | clients | requests/s | p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {w} | {c} | {r:,.0f} | {p50 * 1000:.2f} | {p99 * 1000:.2f} |"
        for w, c, r, p50, p99 in rows
    ]
    lines += [
        "",
        "libmongocrypt (pymongocrypt) against Strongroom KMIP, a new TLS connection per KMS "
        f"request as drivers do: data key creation p50 {create * 1000:.1f} ms (default flow: "
        "Register, Activate, Get), one field encrypt+decrypt round trip with an empty data-key "
        f"cache p50 {roundtrip * 1000:.1f} ms.",
        "",
        "requests/s at 8 clients = requests / (summed request time / clients). Not yet "
        "measured here: PyKMIP's own server as the peer, MariaDB inserts with encryption on/off.",
    ]
    section = "\n".join(lines) + "\n"
    print(section)
    if not options.no_doc:
        write_section(section, "## Databases (KMIP front-end, libmongocrypt)")


def _mongocrypt(port: int, cert: str, key: str, ca: str) -> tuple[float, float]:
    import bson
    from bson.binary import Binary
    from pymongocrypt.options import MongoCryptOptions
    from pymongocrypt.synchronous.explicit_encrypter import ExplicitEncrypter

    from kmip.test_mongocrypt import ALGORITHM, KeyVaultInMemory

    vault = KeyVaultInMemory(cert, key, ca)
    creates, trips = [], []
    for _ in range(20):
        enc = ExplicitEncrypter(
            vault,
            MongoCryptOptions({"kmip": {"endpoint": f"localhost:{port}"}}, key_expiration_ms=1),
        )
        start = time.perf_counter()
        kid = enc.create_data_key("kmip")
        creates.append(time.perf_counter() - start)
        enc.close()
        enc = ExplicitEncrypter(
            vault,
            MongoCryptOptions({"kmip": {"endpoint": f"localhost:{port}"}}, key_expiration_ms=1),
        )
        start = time.perf_counter()
        enc.decrypt(enc.encrypt(bson.encode({"v": "x"}), ALGORITHM, key_id=Binary.from_uuid(kid)))
        trips.append(time.perf_counter() - start)
        enc.close()
    return statistics.median(creates), statistics.median(trips)


if __name__ == "__main__":
    main()
