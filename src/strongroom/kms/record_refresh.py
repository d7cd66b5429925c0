"""Hot key and alias records read again before they expire, off the request path.

A record served by :class:`~strongroom.kms.cache.HotRecords` is at most ``ttl_s`` old: a
change made by another process is seen within that bound. Without a refresh, the first
request after a hot record expires reads it again itself, in its own transaction, once a
second per process: that request's latency is the tail. So a request that finds its record
past half its life asks the :class:`Refresher` for a new copy and goes on with the copy it
has (still within the bound). The refresher's thread reads the record in a transaction of
its own and puts it back with a new expiry, counted from before that read. A record in
use is then read again about twice per ``ttl_s`` and never expires under its readers; one
nobody uses expires as before. If a refresh fails or lags, the copy expires at its own
time and the next request reads the store itself, exactly as without the refresher.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

_log = logging.getLogger("strongroom.kms")
_JOIN_SECONDS = 5.0

Item = tuple[str, str, str]
"""What to read again: ``(kind, account id, name)`` of one record."""


class Refresher:
    """One background thread that runs ``reload(item)`` for each requested item, once.

    :meth:`request` returns at once (it never reads the store): an item already waiting
    or being reloaded is not queued twice. The thread starts with the first request and
    sleeps while there is nothing to do.
    """

    def __init__(self, reload: Callable[[Item], None], name: str) -> None:
        self._reload = reload
        self._name = name
        self._due: dict[Item, None] = {}  # waiting or being reloaded, in request order
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._closed = False

    def __contains__(self, item: Item) -> bool:
        return item in self._due

    def request(self, item: Item) -> None:
        """Reload ``item`` soon on the refresher's thread (unless it is queued already)."""
        if item in self._due:  # the common case while a reload is under way: no lock
            return
        with self._lock:
            if item in self._due or self._closed:
                return
            self._due[item] = None
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._due and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                item = next(iter(self._due))
            try:
                self._reload(item)
            except Exception as exc:  # the copy expires at its own time: a request reads it
                _log.debug("background refresh of a cached record failed: %s", exc)
            with self._lock:
                self._due.pop(item, None)  # close() may have emptied it meanwhile
                if not self._due:
                    self._wake.notify_all()  # wake wait_idle

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every requested reload is done; ``False`` if ``timeout`` passed first."""
        with self._lock:
            return self._wake.wait_for(lambda: not self._due or self._closed, timeout)

    def close(self) -> None:
        """Stop the thread (after the reload under way, if any); later requests do nothing."""
        with self._lock:
            self._closed = True
            self._due.clear()
            self._wake.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(_JOIN_SECONDS)
