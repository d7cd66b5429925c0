"""A worker tunes its process for short requests once it serves: the start-up heap is frozen."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# Run in a child interpreter: freezing the garbage collector is process-wide, and the
# test process must keep its own collector as it is.
_CHILD = textwrap.dedent(
    """
    import asyncio, gc, socket
    import uvicorn
    from strongroom.server.worker import _Server

    async def app(scope, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def main():
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        config = uvicorn.Config(app, lifespan="on", log_config=None)
        config.load()  # what uvicorn's serve() does before startup()
        server = _Server(config)
        server.lifespan = config.lifespan_class(config)
        before = gc.get_freeze_count()
        await server.startup(sockets=[sock])
        print(before, gc.get_freeze_count())
        await server.shutdown(sockets=[sock])

    asyncio.run(main())
    """
)


def test_a_serving_worker_has_frozen_its_start_up_heap() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    before, after = int(out[0]), int(out[1])
    assert before == 0
    # everything start-up made (uvicorn, the app, the modules) is out of the collector's
    # sight: tens of thousands of objects, not a handful
    assert after > 10_000
