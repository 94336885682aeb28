"""A TCP proxy that adds a fixed delay to every request, modelling a far-away storage region.

Each chunk the client sends is forwarded `delay` seconds after it arrived (chunks keep their
order and are pipelined, so bandwidth is not capped); replies pass straight through. A GET of
a small blob is one client chunk, so each request costs `delay` more, like the round trip to a
cloud region. (`tc netem` needs privileges we do not have here.)

Run: python bench/sync_proxy.py LISTEN_PORT TARGET_PORT [DELAY_SECONDS]
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from typing import Iterator


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    async def forward() -> None:
        while (item := await queue.get()) is not None:
            due, data = item
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(forward()) if delay else None
    try:
        while data := await reader.read(1 << 16):
            if sender is None:
                writer.write(data)
                await writer.drain()
            else:
                queue.put_nowait((loop.time() + delay, data))
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        if sender is not None:
            queue.put_nowait(None)
            try:
                await sender
            except ConnectionError:
                pass
        writer.close()


async def serve(listen_port: int, target_port: int, delay: float) -> None:
    async def handle(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            _pipe(client_reader, server_writer, delay),
            _pipe(server_reader, client_writer, 0.0),
            return_exceptions=True,
        )

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port, backlog=512)
    async with server:
        await server.serve_forever()


@contextlib.contextmanager
def latency_proxy(target_port: int, delay: float) -> Iterator[tuple[int, int]]:
    """This proxy as a process in front of `target_port`: (its port, its pid), killed on exit."""
    from tests.fixtures.services import free_port, wait_for_port

    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, str(port), str(target_port), str(delay)])
    try:
        if not wait_for_port(port, 10):
            raise SystemExit("the latency proxy did not start")
        yield port, process.pid
    finally:
        process.kill()
        process.wait()


if __name__ == "__main__":
    listen, target = int(sys.argv[1]), int(sys.argv[2])
    asyncio.run(serve(listen, target, float(sys.argv[3]) if len(sys.argv) > 3 else 0.02))
