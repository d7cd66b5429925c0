"""Workers of one server take even shares of its connections.

Every worker waits on the one listening socket the supervisor bound. Left to the loop,
whichever worker wakes first accepts every connection queued at that moment: wrk's 16
keep-alive connections, opened together, were measured split 15 to 1, 11 to 5 and 7 to 9
between two workers in three runs, and the worker with the larger share queued its
requests behind each other while the other idled (its tail latency was the server's).
Keep-alive connections stay where they landed, so the split lasts.

:class:`ConnectionShares` keeps each worker's count of open connections (handshakes
included) in memory all workers share; :class:`BalancedListener` accepts on a worker's
loop only while no other serving worker has fewer connections. A worker that is ahead
leaves a queued connection to the others for :data:`DEFER_SECONDS`; if nobody took it by
then (the others are busy, stuck or gone), it accepts one after all, and so on, one per
:data:`DEFER_SECONDS`: a peer kept off the CPU for a while (a busy machine) does not lose
the whole queue to it, and takes its share when it is back. Only a peer that has not
taken a connection for :data:`PATIENT_TAKEOVERS` rounds in a row is taken over in
growing batches, so connections never wait long on a worker that does not come.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
from collections.abc import Callable, MutableSequence
from multiprocessing.context import SpawnContext

_log = logging.getLogger("strongroom.server")
ABSENT = -1
"""The count of a worker slot whose worker is not serving (starting, stopped, dead)."""
DEFER_SECONDS = 0.01
"""How long a worker ahead of the others leaves a queued connection to them."""
RECHECK_SECONDS = 0.001
"""How often a worker that left a connection to the others looks whether it is its turn."""
PATIENT_TAKEOVERS = 50
"""Take-overs of one connection each (half a second) before taking over in batches."""
ACCEPT_BATCH = 64
"""Connections one callback accepts at most."""
RESOURCE_PAUSE_SECONDS = 1.0
"""How long accepting pauses when the process is out of file descriptors (as asyncio)."""
_OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


def shared_counts(context: SpawnContext, workers: int) -> MutableSequence[int]:
    """One connection count per worker slot, in shared memory, every slot :data:`ABSENT`."""
    counts: MutableSequence[int] = context.RawArray("l", [ABSENT] * workers)
    return counts


class ConnectionShares:
    """Every worker's count of open connections; this worker's slot is ``index``."""

    def __init__(self, counts: MutableSequence[int], index: int) -> None:
        self._counts = counts
        self._index = index

    def publish(self, count: int) -> None:
        """Note that this worker has ``count`` connections (open, or in their handshake)."""
        self._counts[self._index] = count

    def leave(self) -> None:
        """Take no more connections: the other workers stop leaving any to this one."""
        self._counts[self._index] = ABSENT

    def my_turn(self) -> bool:
        """Whether no other serving worker has fewer connections than this one."""
        counts = self._counts
        index = self._index
        mine = counts[index]
        return not any(other != index and 0 <= count < mine for other, count in enumerate(counts))


class BalancedListener:
    """Accept from a shared listening socket on this loop, taking this worker's share.

    Accepted sockets are served by ``loop.connect_accepted_socket`` with the same
    protocol, TLS context and handshake deadline ``loop.create_server`` would use. Has the
    ``close`` and ``wait_closed`` of an :class:`asyncio.Server`, which uvicorn calls on
    shutdown.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        protocol_factory: Callable[[], asyncio.Protocol],
        shares: ConnectionShares,
        open_connections: Callable[[], int],
        ssl_context: ssl.SSLContext | None = None,
        handshake_timeout: float | None = None,
        defer_seconds: float = DEFER_SECONDS,
    ) -> None:
        self._loop = loop
        self._sock = sock
        self._fd = sock.fileno()
        self._factory = protocol_factory
        self._shares = shares
        self._open = open_connections
        self._ssl = ssl_context
        self._handshake_timeout = handshake_timeout if ssl_context is not None else None
        self._defer = defer_seconds
        self._handshaking = 0
        self._handshakes: set[asyncio.Task[None]] = set()  # (the loop keeps weak references)
        self._reading = False
        self._later: asyncio.TimerHandle | None = None
        self._closed = False
        self._streak = 0  # take-overs in a row: a peer that does not accept
        self._deferred_at = 0.0
        self.accepted = 0
        """Connections this worker accepted."""
        self.deferred = 0
        """Times this worker left a queued connection to the others."""

    def start(self) -> None:
        """Publish this worker's count and start accepting."""
        self._sock.setblocking(False)
        self.publish()
        self._read()

    def publish(self) -> None:
        """Bring this worker's shared count up to date (call it when a connection closes).

        A connection counts from its accept: in its handshake, then open. It is counted
        open once its handshake is over (the protocol has it by then), in the same step
        that stops counting it as in its handshake, so it never counts twice.
        """
        if not self._closed:
            self._shares.publish(self._open() + self._handshaking)

    def _read(self) -> None:
        if not self._reading and not self._closed:
            self._loop.add_reader(self._fd, self._readable)
            self._reading = True

    def _unread(self) -> None:
        if self._reading:
            self._loop.remove_reader(self._fd)
            self._reading = False

    def _readable(self) -> None:
        if not self._shares.my_turn():
            # another worker has fewer connections: it was woken too, and takes this one
            self.deferred += 1
            self._unread()
            self._deferred_at = self._loop.time()
            self._later = self._loop.call_later(RECHECK_SECONDS, self._recheck)
            return
        self._streak = 0
        self._accept(ACCEPT_BATCH, until_ahead=True)

    def _recheck(self) -> None:
        self._later = None
        if self._closed:
            return
        if self._shares.my_turn():  # a peer took connections, or lost some
            self._read()
            return
        if self._loop.time() - self._deferred_at < self._defer:
            self._later = self._loop.call_later(RECHECK_SECONDS, self._recheck)
            return
        # nobody took what was queued: the other workers are busy, stuck or gone
        self._streak += 1
        most = max(1, min(self._streak - PATIENT_TAKEOVERS, ACCEPT_BATCH))
        if not self._accept(most, until_ahead=False):
            self._streak = 0  # a peer took it after all
        if self._later is None:  # (not paused for want of file descriptors)
            self._read()

    def _accept(self, most: int, until_ahead: bool) -> int:
        """Accept up to ``most`` queued connections; return how many."""
        taken = 0
        for _ in range(most):
            try:
                conn, _address = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                break  # none queued (another worker took it)
            except OSError as exc:
                if exc.errno in _OUT_OF_RESOURCES:
                    _log.error("accepting connections paused for a second: %s", exc)
                    self._unread()
                    self._later = self._loop.call_later(RESOURCE_PAUSE_SECONDS, self._resume)
                    break
                if exc.errno in (errno.ECONNABORTED, errno.EPROTO):
                    continue  # the client gave up while queued
                raise
            taken += 1
            self.accepted += 1
            self._handshaking += 1
            self.publish()
            task = self._loop.create_task(self._serve(conn))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)
            if until_ahead and not self._shares.my_turn():
                break
        return taken

    def _resume(self) -> None:
        self._later = None
        self._read()

    async def _serve(self, conn: socket.socket) -> None:
        try:
            conn.setblocking(False)
            if self._ssl is None:
                await self._loop.connect_accepted_socket(self._factory, conn)
            else:
                await self._loop.connect_accepted_socket(
                    self._factory,
                    conn,
                    ssl=self._ssl,
                    ssl_handshake_timeout=self._handshake_timeout,
                )
        except OSError as exc:  # (SSLError, TimeoutError and resets are OSErrors)
            # a handshake that failed or timed out: the transport closed the socket
            _log.debug("connection dropped before its first request: %s", exc)
            conn.close()  # (a no-op once a transport took it over)
        except Exception:
            _log.exception("unexpected error setting up a connection")
            conn.close()
        finally:
            self._handshaking -= 1
            self.publish()

    def close(self) -> None:
        """Stop accepting (this worker's share goes to the others)."""
        self._closed = True
        self._unread()
        if self._later is not None:
            self._later.cancel()
            self._later = None
        self._shares.leave()

    async def wait_closed(self) -> None:
        """Nothing to wait for: the listening socket is the supervisor's."""
