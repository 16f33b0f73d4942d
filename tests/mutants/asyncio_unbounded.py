# MUTANT: asyncio Protocol that write()s every chunk and never pauses reading | expect: FLOW-001
"""An asyncio echo Protocol without flow control: transport.write() queues in memory whatever
the client does not read, and the server goes on reading -- one client can fill its memory.

    python3 tests/mutants/asyncio_unbounded.py PORT
"""

import asyncio
import sys


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        # the bug: no pause_writing()/resume_writing() -> pause_reading(); the buffer grows without bound
        self.transport.write(data)

    def eof_received(self):
        return False  # close once the echo is written


async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, "127.0.0.1", int(sys.argv[1]))
    async with server:
        await server.serve_forever()


asyncio.run(main())
