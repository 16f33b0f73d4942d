"""asyncio's and uvloop's own TLS transports drop the tail of the echo when close_notify is followed
at once by a TCP FIN (TLS-008).

The server is a minimal echo protocol on ``loop.create_server(ssl=context)``: a BufferedProtocol
with a fixed 64 KiB read buffer (get_buffer's sizehint is only a hint), the flow control the asyncio
documentation describes (pause_writing/resume_writing pause and resume reading), and
eof_received() -> False (the SSL transport then writes out the queue, sends its close_notify and
closes). The client sends a payload while reading the echo, then its close_notify and -- as any
client that simply closes does -- its TCP FIN right behind it, and reads until EOF. RFC 8446 6.1:
close_notify ends only the sender's direction, so the server must still deliver the whole echo,
then its own close_notify.

asyncio's SSLProtocol (3.11) decrypts one get_buffer() worth per step and leaves the rest of each
socket read (up to 256 KiB) for a later callback. A FIN that arrives in between moves it to its
shutdown state: it delivers one more buffer, silently drops every write of the protocol from then
on, and -- having seen the FIN -- never sends its own close_notify. uvloop 0.23 (its own port of
the same code) does the same. (A plain Protocol is hit when it has paused reading at that moment.)
The client gets part of its echo (typically 229,376 of 300,000 B) and no close_notify: a
truncated stream. Control: the same client that waits for the server's close_notify before its FIN
gets every byte. The loss depends on timing, so each case is tried up to ROUNDS times; the first
loss with a complete control is a reproduction (typically within a few rounds, under a second).

    python3 tests/evidence/asyncio_sslproto_fin_drops_echo.py            # asyncio; exit 0: reproduced
    python3 tests/evidence/asyncio_sslproto_fin_drops_echo.py --uvloop   # the same on uvloop
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import selectors
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import trustme

SIZES = (300_000, 1_000_000, 5_000_000)
VERSIONS = (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2)
ROUNDS = 20
TIMEOUT_S = 20.0
CHUNK = 65536
SOCKET_WOULD_BLOCK_OR_GONE = (BlockingIOError, ConnectionResetError, BrokenPipeError)
READ_BUFFER = 65536  # the server protocol's read buffer, as in impls/asyncio_server.py


class Echo(asyncio.BufferedProtocol):
    """The minimal echo protocol: a fixed read buffer (get_buffer's sizehint is only a hint), the
    flow control the asyncio documentation describes, and eof_received() -> False."""

    def __init__(self) -> None:
        self.buffer = memoryview(bytearray(READ_BUFFER))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.transport.write(bytes(self.buffer[:nbytes]))

    def pause_writing(self) -> None:
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.transport.resume_reading()

    def eof_received(self) -> bool:
        return False


def serve(cert: str, key: str, uvloop: bool) -> None:
    """The server process: print the port, echo until killed."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    loop = event_loop(uvloop)()
    server = loop.run_until_complete(loop.create_server(Echo, "127.0.0.1", 0, ssl=context))
    print(server.sockets[0].getsockname()[1], flush=True)
    loop.run_forever()


@contextmanager
def server_process(cert: Path, key: Path, uvloop: bool) -> Iterator[int]:
    """Run serve() in a child process (not a thread: the client must not share its GIL)."""
    argv = [sys.executable, __file__, "--serve", str(cert), str(key), *(["--uvloop"] if uvloop else [])]
    server = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        yield int(server.stdout.readline())
    finally:
        server.kill()
        server.wait(TIMEOUT_S)


@dataclass
class Result:
    echoed: int
    same: bool
    close_notify: bool


class TlsClient:
    """A TLS client over memory BIOs, so it can send close_notify and FIN exactly when told."""

    def __init__(self, port: int, context: ssl.SSLContext) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname="127.0.0.1")
        self.received = bytearray()
        self.close_notify = False
        self.tcp_eof = False
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.sock.sendall(self.outgoing.read())
                self.feed(self.sock.recv(CHUNK))
        self.sock.sendall(self.outgoing.read())
        self.sock.setblocking(False)

    def feed(self, ciphertext: bytes) -> None:
        if not ciphertext:
            self.tcp_eof = True
            return
        self.incoming.write(ciphertext)
        while not self.close_notify:
            try:
                plaintext = self.tls.read(CHUNK)
            except ssl.SSLWantReadError:
                return
            except ssl.SSLZeroReturnError:
                plaintext = b""
            self.received += plaintext
            self.close_notify = not plaintext


def exchange(port: int, context: ssl.SSLContext, payload: bytes, fin_at_once: bool) -> Result:
    """Send payload while reading, then close_notify (and a FIN at once, or after the server's
    close_notify); read until the server closes."""
    client = TlsClient(port, context)
    selector = selectors.DefaultSelector()
    selector.register(client.sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
    sent, pending, notified, fin_sent = 0, b"", False, False
    deadline = time.monotonic() + TIMEOUT_S
    while not client.tcp_eof and time.monotonic() < deadline:
        if not pending and sent < len(payload):
            client.tls.write(payload[sent : sent + CHUNK])
            sent = min(sent + CHUNK, len(payload))
            pending = client.outgoing.read()
        elif not pending and not notified:
            with contextlib.suppress(ssl.SSLWantReadError):  # ours is out; the server's not yet in
                client.tls.unwrap()
            pending, notified = client.outgoing.read(), True
        elif not pending and not fin_sent and (fin_at_once or client.close_notify):
            client.sock.shutdown(socket.SHUT_WR)
            fin_sent = True
        for _, events in selector.select(0.5):
            if events & selectors.EVENT_WRITE and pending:
                with contextlib.suppress(*SOCKET_WOULD_BLOCK_OR_GONE):
                    pending = pending[client.sock.send(pending) :]
            if events & selectors.EVENT_READ:
                with contextlib.suppress(*SOCKET_WOULD_BLOCK_OR_GONE):
                    client.feed(client.sock.recv(262144))
    selector.close()
    client.sock.close()
    return Result(len(client.received), bytes(client.received) == payload, client.close_notify)


def certificates(directory: Path) -> tuple[Path, Path, ssl.SSLContext]:
    """The server's certificate and key files, and a client context trusting their CA."""
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    cert, key = directory / "cert.pem", directory / "key.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return cert, key, client


def event_loop(uvloop: bool) -> Callable[[], asyncio.AbstractEventLoop]:
    if not uvloop:
        return asyncio.new_event_loop
    import uvloop as uv  # noqa: PLC0415 -- optional: only for --uvloop

    return uv.new_event_loop


def try_all(port: int, client_context: ssl.SSLContext) -> bool:
    """Each TLS version and size, up to ROUNDS times; True at the first loss with a clean control."""
    for version in VERSIONS:
        client_context.maximum_version = version
        for size in SIZES:
            payload = random.Random(size).randbytes(size)
            for round_ in range(1, ROUNDS + 1):
                defect = exchange(port, client_context, payload, fin_at_once=True)
                control = exchange(port, client_context, payload, fin_at_once=False)
                print(
                    f"{version.name} {size:>9} B sent, round {round_}: close_notify+FIN -> "
                    f"{defect.echoed:>9} B echoed, close_notify={defect.close_notify}; "
                    f"FIN after the server's close_notify -> {control.echoed:>9} B, "
                    f"close_notify={control.close_notify}"
                )
                if not (defect.same and defect.close_notify) and control.same and control.close_notify:
                    return True
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uvloop", action="store_true", help="serve on uvloop instead of asyncio")
    parser.add_argument("--serve", nargs=2, metavar=("CERT", "KEY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], args.serve[1], args.uvloop)
        return 0
    loop_name = "uvloop" if args.uvloop else "asyncio"
    print(f"{loop_name} create_server(ssl=...), Python {sys.version.split()[0]}, {ssl.OPENSSL_VERSION}")
    with tempfile.TemporaryDirectory() as directory:
        cert, key, client_context = certificates(Path(directory))
        with server_process(cert, key, args.uvloop) as port:
            reproduced = try_all(port, client_context)
    print("reproduced: the echo's tail or the close_notify was lost" if reproduced else "not reproduced")
    return 0 if reproduced else 1


if __name__ == "__main__":
    sys.exit(main())
