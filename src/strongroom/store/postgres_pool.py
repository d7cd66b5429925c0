"""A small, thread-safe pool of PostgreSQL connections for :class:`PostgresStore`.

Connections are opened on demand up to ``size`` and reused last-in first-out, so a quiet
process keeps few of them busy. A connection found broken is closed together with every
idle one (after a server restart or failover they are all dead) and the next checkout
connects anew. A pool used in a forked child forgets the parent's connections instead of
sharing their sockets.
"""

from __future__ import annotations

import os
import threading
import time

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import TupleRow

from strongroom.errors import DependencyTimeoutError, StoreError

Connection = psycopg.Connection[TupleRow]


class ConnectionPool:
    """At most ``size`` autocommit connections to ``dsn``, handed out one per unit of work."""

    def __init__(
        self,
        dsn: str,
        size: int = 8,
        checkout_timeout_s: float = 30.0,
        connect_timeout_s: int = 10,
    ) -> None:
        if size < 1:
            raise StoreError("the connection pool needs room for at least one connection")
        self._dsn = dsn
        self._size = size
        self._checkout_timeout = checkout_timeout_s
        self._connect_timeout = connect_timeout_s
        self._cond = threading.Condition()
        self._idle: list[Connection] = []
        self._open = 0
        self._closed = False
        self._pid = os.getpid()

    def connect(self) -> Connection:
        """Open a new connection outside the pool (the caller closes it)."""
        try:
            conn = psycopg.connect(
                self._dsn,
                autocommit=True,
                connect_timeout=self._connect_timeout,
                application_name="strongroom",
            )
        except psycopg.Error as exc:
            raise StoreError("cannot connect to the PostgreSQL key store") from exc
        return conn

    def acquire(self) -> Connection:
        """Return an idle connection, or a new one, waiting while ``size`` are in use."""
        deadline = time.monotonic() + self._checkout_timeout
        with self._cond:
            self._forget_after_fork()
            while True:
                if self._closed:
                    raise StoreError("the key store is closed")
                if self._idle:
                    return self._idle.pop()
                if self._open < self._size:
                    self._open += 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._cond.wait(remaining):
                    raise DependencyTimeoutError("no free connection to the key store")
        try:
            return self.connect()
        except BaseException:
            with self._cond:
                self._open -= 1
                self._cond.notify()
            raise

    def release(self, conn: Connection) -> None:
        """Give ``conn`` back; close it (and every idle one) if it is broken."""
        healthy = (
            not conn.closed
            and not conn.broken
            and conn.info.transaction_status == TransactionStatus.IDLE
        )
        stale: list[Connection] = []
        with self._cond:
            if os.getpid() != self._pid:
                return
            if healthy and not self._closed:
                self._idle.append(conn)
            else:
                stale.append(conn)
                if not healthy:
                    stale.extend(self._idle)
                    self._idle.clear()
                self._open -= len(stale)
            self._cond.notify(len(stale) or 1)
        for old in stale:
            old.close()

    def _forget_after_fork(self) -> None:
        if os.getpid() != self._pid:
            self._pid = os.getpid()
            self._idle = []
            self._open = 0

    def close(self) -> None:
        """Close the idle connections now and the busy ones when they come back."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._cond.notify_all()
        for conn in idle:
            conn.close()
