"""Background work of an in-process key service: audit flushes and maintenance.

With ``--data-dir`` the plugin is the key service's only process, so it does what
``strongroom server`` does beside serving: append queued audit events every
``flush_seconds`` and run the key service's maintenance (due automatic rotations and
deletions) every ``maintenance_seconds``. :meth:`Housekeeping.stop` flushes one last time.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from strongroom.kms import KeyService

_log = logging.getLogger("strongroom.k8s")


class Housekeeping:
    """A daemon thread flushing the audit log and running maintenance for ``service``."""

    def __init__(
        self, service: KeyService, flush_seconds: float = 1.0, maintenance_seconds: float = 60.0
    ) -> None:
        self._service = service
        self._flush_seconds = flush_seconds
        self._maintenance_seconds = maintenance_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="strongroom-k8s-housekeeping", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        next_maintenance = time.monotonic()
        while not self._stop.wait(self._flush_seconds):
            self.flush()
            if time.monotonic() >= next_maintenance:
                next_maintenance = time.monotonic() + self._maintenance_seconds
                self.maintain()

    def flush(self) -> None:
        """Append the queued audit events (log and keep them queued on failure)."""
        try:
            self._service.audit.flush()
        except Exception:
            _log.exception("audit flush failed; the events stay queued and are retried")

    def maintain(self) -> None:
        """Run due rotations and deletions (log on failure)."""
        try:
            done = self._service.run_maintenance()
        except Exception:
            _log.exception("maintenance failed; retrying next round")
            return
        if done["rotated"] or done["deleted"]:
            _log.info(
                "maintenance",
                extra={"fields": {"rotated": done["rotated"], "deleted": done["deleted"]}},
            )

    def stop(self) -> None:
        """Stop the thread and flush the audit log one last time."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.flush()
