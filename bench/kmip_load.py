"""The KMIP load of ``bench/databases.py``: the same client code and requests for any server.

:func:`prepare` registers a 32-byte SecretData and creates an AES-256 key on a server
(both activated) and returns the three request messages of the benchmark: ``Get`` of the
secret, ``Encrypt`` of 64 bytes under the key (AES-GCM, the server picks the IV) and
``Decrypt`` of one such ciphertext. Messages are raw TTLV built by Strongroom's codec
(checked against PyKMIP's client in ``tests/kmip``), KMIP 1.4, identical for both
servers but for the object ids and ciphertexts.

:class:`Clients` keeps worker processes; :meth:`Clients.run` has ``k`` of them connect
(TLS, client certificate), warm up, wait at one start signal, then send their requests
back to back on that one connection. Throughput is requests over wall-clock time from
the signal to the last answer; latencies are per request. Or one process drives all ``k``
connections with asyncio (uvloop), as an application's connection pool does: on a machine
with few cores that measures the server more and the scheduler's run queue less.
"""

from __future__ import annotations

import multiprocessing as mp
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any

from kmip_servers import KmipTarget

from strongroom.kmip.tags import Operation, ResultStatus, Tag
from strongroom.kmip.ttlv import Item, byte_string, enumeration, integer, structure, text
from strongroom.testing.kmip_client import read_message, request, results

VERSION = (1, 4)
AES, GCM, SECRET_PASSWORD = 3, 9, 2
ENCRYPT_DECRYPT = 4 | 8


def _attribute(name: str, value: Item) -> Item:
    return structure(Tag.ATTRIBUTE, text(Tag.ATTRIBUTE_NAME, name), value)


def _gcm() -> Item:
    return structure(
        Tag.CRYPTOGRAPHIC_PARAMETERS,
        enumeration(Tag.BLOCK_CIPHER_MODE, GCM),
        enumeration(Tag.CRYPTOGRAPHIC_ALGORITHM, AES),
        integer(Tag.TAG_LENGTH, 16),
    )


def connect(target: KmipTarget) -> ssl.SSLSocket:
    """A TLS connection with the target's client certificate (no Nagle, as drivers do)."""
    context = ssl.create_default_context(cafile=target.ca)
    context.load_cert_chain(target.cert, target.key)
    raw = socket.create_connection(("127.0.0.1", target.port), timeout=30)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return context.wrap_socket(raw, server_hostname="localhost")


def _payload(sock: ssl.SSLSocket, message: bytes) -> Item:
    sock.sendall(message)
    (item,) = results(read_message(sock))
    found = item.find(Tag.RESULT_STATUS)
    if found is None or found.value != ResultStatus.SUCCESS:
        reason = item.find(Tag.RESULT_MESSAGE)
        raise SystemExit(f"setup request failed: {reason.value if reason else item}")
    payload = item.find(Tag.RESPONSE_PAYLOAD)
    assert payload is not None
    return payload


def _uid(payload: Item) -> str:
    found = payload.find(Tag.UNIQUE_IDENTIFIER)
    assert found is not None and isinstance(found.value, str)
    return found.value


def prepare(target: KmipTarget) -> dict[str, bytes]:
    """Create the objects on ``target``; the ``Get``/``Encrypt``/``Decrypt`` messages."""
    secret = structure(
        Tag.SECRET_DATA,
        enumeration(Tag.SECRET_DATA_TYPE, SECRET_PASSWORD),
        structure(
            Tag.KEY_BLOCK,
            enumeration(Tag.KEY_FORMAT_TYPE, 2),  # Opaque
            structure(Tag.KEY_VALUE, byte_string(Tag.KEY_MATERIAL, b"k" * 32)),
        ),
    )
    usage = _attribute("Cryptographic Usage Mask", integer(Tag.ATTRIBUTE_VALUE, 12))
    template = structure(
        Tag.TEMPLATE_ATTRIBUTE,
        _attribute("Cryptographic Algorithm", enumeration(Tag.ATTRIBUTE_VALUE, AES)),
        _attribute("Cryptographic Length", integer(Tag.ATTRIBUTE_VALUE, 256)),
        usage,
    )
    with connect(target) as sock:
        register = [enumeration(Tag.OBJECT_TYPE, 7), structure(Tag.TEMPLATE_ATTRIBUTE, usage)]
        sid = _uid(_payload(sock, request(VERSION, (Operation.REGISTER, [*register, secret]))))
        _payload(sock, request(VERSION, (Operation.ACTIVATE, [text(Tag.UNIQUE_IDENTIFIER, sid)])))
        create = [enumeration(Tag.OBJECT_TYPE, 2), template]
        kid = _uid(_payload(sock, request(VERSION, (Operation.CREATE, create))))
        _payload(sock, request(VERSION, (Operation.ACTIVATE, [text(Tag.UNIQUE_IDENTIFIER, kid)])))
        key = text(Tag.UNIQUE_IDENTIFIER, kid)
        encrypt = request(
            VERSION, (Operation.ENCRYPT, [key, _gcm(), byte_string(Tag.DATA, b"d" * 64)])
        )
        out = _payload(sock, encrypt)
        sealed = [
            byte_string(t, found.value)
            for t in (Tag.DATA, Tag.IV_COUNTER_NONCE, Tag.AUTHENTICATED_ENCRYPTION_TAG)
            if (found := out.find(t)) is not None and isinstance(found.value, bytes)
        ]
        decrypt = request(VERSION, (Operation.DECRYPT, [key, _gcm(), *sealed]))
        plain = _payload(sock, decrypt).find(Tag.DATA)
        if plain is None or plain.value != b"d" * 64:
            raise SystemExit(f"{target.name}: Decrypt did not give the plaintext back")
        get = request(VERSION, (Operation.GET, [text(Tag.UNIQUE_IDENTIFIER, sid)]))
        _payload(sock, get)
    return {"Get": get, "Encrypt": encrypt, "Decrypt": decrypt}


# -- worker processes ------------------------------------------------------------------------


def _read_raw(sock: ssl.SSLSocket) -> bytes:
    header = b""
    while len(header) < 8:
        chunk = sock.recv(8 - len(header))
        if not chunk:
            raise ConnectionError("the server closed the connection")
        header += chunk
    need = int.from_bytes(header[4:], "big")
    body = bytearray()
    while len(body) < need:
        chunk = sock.recv(need - len(body))
        if not chunk:
            raise ConnectionError("the server closed the connection")
        body += chunk
    return header + bytes(body)


async def _connections(
    target: KmipTarget, message: bytes, k: int, n: int, done: Any, go: Any
) -> None:
    """``k`` connections from this one process (asyncio), ``n`` requests each."""
    import asyncio

    context = ssl.create_default_context(cafile=target.ca)
    context.load_cert_chain(target.cert, target.key)
    conns = []
    for _ in range(k):
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", target.port, ssl=context, server_hostname="localhost"
        )
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conns.append((reader, writer))

    async def exchange(reader: Any, writer: Any) -> bytes:
        writer.write(message)
        head = await reader.readexactly(8)
        return bytes(head + await reader.readexactly(int.from_bytes(head[4:], "big")))

    expected = len(await exchange(*conns[0]))
    for reader, writer in conns:
        for _ in range(20):
            await exchange(reader, writer)
    done.put("ready")
    await asyncio.get_running_loop().run_in_executor(None, go.wait)
    latencies: list[float] = []
    odd = 0
    clock = time.perf_counter

    async def client(reader: Any, writer: Any) -> None:
        nonlocal odd
        for _ in range(n):
            sent = clock()
            answer = await exchange(reader, writer)
            latencies.append(clock() - sent)
            odd += len(answer) != expected

    start = clock()
    await asyncio.gather(*(client(r, w) for r, w in conns))
    end = clock()
    for _, writer in conns:
        writer.close()
    done.put((start, end, latencies, odd))


def _worker(jobs: Any, done: Any, go: Any) -> None:
    while (job := jobs.get()) is not None:
        target, message, n, warm, together = job
        if together:  # this process alone drives ``together`` connections
            import uvloop

            with connect(target) as sock:
                _payload(sock, message)  # a success, decoded once
            uvloop.run(_connections(target, message, together, n, done, go))
            continue
        with connect(target) as sock:
            _payload(sock, message)  # a success, decoded once
            sock.sendall(message)
            expected = len(_read_raw(sock))  # every later answer has this length
            for _ in range(warm):
                sock.sendall(message)
                _read_raw(sock)
            done.put("ready")
            go.wait()
            latencies, odd = [], 0
            clock = time.perf_counter
            start = clock()
            for _ in range(n):
                sent = clock()
                sock.sendall(message)
                answer = _read_raw(sock)
                latencies.append(clock() - sent)
                odd += len(answer) != expected
            end = clock()
        done.put((start, end, latencies, odd))


@dataclass(frozen=True, slots=True)
class Run:
    """One cell of one round: wall-clock window and every request's latency."""

    start: float
    end: float
    latencies: list[float]

    @property
    def rps(self) -> float:
        """Requests per second of wall-clock time."""
        return len(self.latencies) / (self.end - self.start)


class Clients:
    """``size`` client processes, started once (spawn), given one job per cell."""

    def __init__(self, size: int) -> None:
        ctx = mp.get_context("spawn")
        self._go = ctx.Event()
        self._done: Any = ctx.Queue()
        self._jobs: list[Any] = [ctx.Queue() for _ in range(size)]
        self._procs = [
            ctx.Process(target=_worker, args=(q, self._done, self._go), daemon=True)
            for q in self._jobs
        ]
        for proc in self._procs:
            proc.start()

    def run(
        self,
        target: KmipTarget,
        message: bytes,
        clients: int,
        requests: int,
        on_go: Any = None,
        one_process: bool = False,
    ) -> Run:
        """``clients`` connections sending ``requests`` in all; ``on_go()`` at the signal.

        Each connection has its own process, or with ``one_process`` all are driven by one
        process (asyncio, as an application's connection pool is).
        """
        per = max(1, requests // clients)
        if one_process:
            self._jobs[0].put((target, message, per, 20, clients))
        else:
            for queue in self._jobs[:clients]:
                queue.put((target, message, per, 20, 0))
        for _ in range(1 if one_process else clients):
            if self._done.get(timeout=300) != "ready":
                raise SystemExit("a client failed before the start")
        if on_go is not None:
            on_go()
        self._go.set()
        parts = [self._done.get(timeout=600) for _ in range(1 if one_process else clients)]
        self._go.clear()
        odd = sum(p[3] for p in parts)
        if odd:
            raise SystemExit(f"{target.name}: {odd} answers were not like the first (failures?)")
        return Run(
            min(p[0] for p in parts), max(p[1] for p in parts), [x for p in parts for x in p[2]]
        )

    def close(self) -> None:
        """Stop the workers."""
        for queue in self._jobs:
            queue.put(None)
        for proc in self._procs:
            proc.join(timeout=10)
