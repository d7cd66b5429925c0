"""The ``strongroom server`` process: key service + KMS API app + background work, served.

:func:`bind_listener` binds the socket; :func:`serve` runs one worker in this process or a
:class:`Supervisor` over several. Each process builds its own :class:`Runtime` (key service,
ASGI app, audit flusher, maintenance). The command line in :mod:`strongroom.cli.server`
prepares the data directory first (initialisation, admin credentials, CA bundle).
"""

from strongroom.server.runtime import CachedBackend, Runtime
from strongroom.server.settings import ServerSettings
from strongroom.server.supervisor import Supervisor, bind_listener, serve

__all__ = ["CachedBackend", "Runtime", "ServerSettings", "Supervisor", "bind_listener", "serve"]
