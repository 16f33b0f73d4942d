"""A correct echo server in asyncio streams style: read, write, ``await drain()``.

``drain()`` is the flow control: it waits while the transport's write buffer is above its high
water mark, so a client that does not read stops this connection's reads (and no other's), and
TCP holds the client back. At EOF every byte has been written and drained, then the writer is
closed (FIN). It announces itself and exits 0 on SIGTERM and SIGINT like the built-in servers:

    python3 tests/correct/streams_echo.py PORT [HOST]
"""

from __future__ import annotations

import asyncio
import resource
import signal
import sys

READ_SIZE = 65536


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(READ_SIZE):
            writer.write(data)
            await writer.drain()
        writer.close()
        await writer.wait_closed()
    except ConnectionError:  # the client reset or went away: only this connection ends
        writer.close()
    except asyncio.CancelledError:
        # asyncio.run() cancels the handlers at shutdown (SIGTERM/SIGINT). Re-raised, the
        # cancellation would be logged with a traceback by asyncio 3.11's start_server callback;
        # ending quietly is what a clean exit means here.
        writer.close()


async def serve(host: str, port: int) -> None:
    try:
        server = await asyncio.start_server(echo, host, port, backlog=1024)
    except OSError as exc:
        sys.stderr.write(f"streams_echo: cannot listen on {host} port {port}: {exc.strerror}\n")
        raise SystemExit(2) from None
    bound = server.sockets[0].getsockname()[1]
    print(f"[server] listening on {f'[{host}]' if ':' in host else host}:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    port, host = int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # a soft 1024 would cap the clients
    asyncio.run(serve(host, port))


if __name__ == "__main__":
    main()
