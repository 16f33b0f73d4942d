"""A TCP echo server with one blocking thread per connection.

The concurrency model
    The main thread does nothing but accept(). Every accepted connection gets its own thread,
    which runs the simplest loop in network programming: recv() some bytes, sendall() them
    back, repeat until recv() returns b"" (the client's EOF), then close. Each thread blocks
    in the kernel while it waits, so the code reads top to bottom like a single-client server
    and the operating system's scheduler does the multiplexing.

What it teaches
    * The life of a server socket: bind, listen, announce, accept, echo until EOF, close.
    * recv() returns *some* bytes -- whatever has arrived, up to the size asked for. TCP is a
      byte stream, not a message stream: one send() by the client may arrive as many recv()s,
      and many as one. An echo server never needs to know where "messages" end.
    * send() may write only *part* of what it is given when the kernel's send buffer is
      nearly full (a "partial write"). sendall() loops until every byte is queued.
    * Backpressure for free: while a client sends but does not read, the server's send
      buffer fills, sendall() blocks, the thread stops calling recv(), the server's receive
      buffer fills, and TCP's window tells the client to stop sending. Memory use per
      connection stays at one buffer, however much the client tries to push.
    * TLS (``--tls-cert FILE --tls-key FILE``) is the same loop on an ssl.SSLSocket; its
      handshake and its ends are threaded_tls.py's lesson.

Its limits
    A thread costs a stack and a kernel task; tens of thousands of mostly idle connections
    are better served by one event loop (see asyncio_server.py). The GIL lets only one thread
    run Python at a time, though it is released during every blocking socket call, which is
    where an echo server spends its life.
"""

from __future__ import annotations

import errno
import logging
import signal
import socket
import threading
import time
from types import FrameType
from typing import NoReturn

from impls import cli
from impls.threaded_tls import Tls, tls_stream

DEFAULT_PORT = 5050

# Each thread reserves its stack up front: by default 8 MiB of address space (RLIMIT_STACK),
# only reserved, not resident, but a thousand connections would still map 8 GiB. Our threads
# call recv and sendall a few frames deep; 256 KiB is generous for that.
THREAD_STACK_BYTES = 256 * 1024

# accept() errors that describe the moment, not the listener: out of file descriptors or
# kernel memory, or a client that gave up before we picked it up. Waiting and retrying is
# right; the pending clients wait in the backlog meanwhile.
TRANSIENT_ACCEPT_ERRORS = frozenset(
    {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM, errno.ECONNABORTED}
)
ACCEPT_RETRY_SECONDS = 0.1

log = logging.getLogger("impls.threaded")


def main(argv: list[str] | None = None) -> None:
    args = cli.server_parser("TCP echo server, one thread per connection.", DEFAULT_PORT).parse_args(argv)
    cli.configure_logging(args.verbose)
    context = cli.server_tls_context(args.tls_cert, args.tls_key)
    tls = None if context is None else Tls(context, args.tls_handshake_timeout)
    exit_cleanly_on_signals()
    threading.stack_size(THREAD_STACK_BYTES)
    # open_listener: bind and listen (raising the descriptor limit first), or one line, exit 2.
    with cli.open_listener(args.host, args.port) as listener:
        cli.announce(listener, tls=tls is not None)  # after listen(): a client may connect at once
        accept_forever(listener, args.buffer_size, tls)


def exit_cleanly_on_signals() -> None:
    """Make SIGTERM and Ctrl-C (SIGINT) end the server with status 0 and no traceback.

    Python runs signal handlers in the main thread, between bytecodes. The main thread is
    usually blocked in accept(); the signal interrupts that system call with EINTR, Python
    runs our handler, and because the handler raises, accept() does not resume (PEP 475
    retries EINTR only when the handler returns normally). SystemExit unwinds main(), whose
    ``with`` closes the listener. Connection threads are daemons: they end with the process.
    """
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _exit_with_status_0)


def _exit_with_status_0(signum: int, frame: FrameType | None) -> NoReturn:
    raise SystemExit(0)


def accept_forever(listener: socket.socket, buffer_size: int, tls: Tls | None) -> None:
    """Accept connections and hand each to a thread of its own (a TLS handshake is its first job)."""
    while True:
        try:
            conn, peer = listener.accept()
        except OSError as exc:
            if exc.errno not in TRANSIENT_ACCEPT_ERRORS:
                raise
            log.warning("accept: %s; retrying", exc.strerror)
            time.sleep(ACCEPT_RETRY_SECONDS)
            continue
        start_echo_thread(conn, cli.format_address(*peer[:2]), buffer_size, tls)


def start_echo_thread(conn: socket.socket, peer: str, buffer_size: int, tls: Tls | None) -> None:
    # Nagle's algorithm holds back a small segment while an earlier one is unacknowledged,
    # and the client's delayed ACK holds back that acknowledgement for up to ~40 ms: a small
    # echo could stall for 40 ms on each round trip. TCP_NODELAY sends every write at once.
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # daemon=True: an open connection must not keep the process alive after SIGTERM.
    thread = threading.Thread(
        target=serve_connection, args=(conn, peer, buffer_size, tls), name=peer, daemon=True
    )
    try:
        thread.start()
    except RuntimeError as exc:  # "can't start new thread": out of memory or a ulimit
        log.warning("%s: closing, %s", peer, exc)
        conn.close()


def serve_connection(conn: socket.socket, peer: str, buffer_size: int, tls: Tls | None) -> None:
    """Echo one connection until EOF, then close it. Runs in the connection's own thread."""
    log.info("%s: connected", peer)
    with conn:
        try:
            if tls is None:
                echo_until_eof(conn, buffer_size)
            else:
                with tls_stream(conn, tls) as stream:
                    echo_until_eof(stream, buffer_size)
        except OSError as exc:
            # Usually ConnectionResetError (the client closed with unread data, or aborted)
            # or BrokenPipeError: Python ignores SIGPIPE at startup, so a write to a closed
            # connection raises EPIPE instead of killing the whole process. Over TLS also
            # ssl.SSLError (a corrupt record) and the ConnectionAbortedError of tls_stream.
            # Either way this client is gone, the others are fine: one log line.
            log.info("%s: %s", peer, exc.strerror or exc)
            return
    log.info("%s: closed after EOF", peer)


def echo_until_eof(conn: socket.socket, buffer_size: int) -> None:
    """recv() whatever has arrived and sendall() it back, until the client's EOF.

    recv_into() reuses one buffer for the life of the connection instead of allocating a
    fresh bytes object per recv(). A signal arriving during recv() or sendall() interrupts
    the system call with EINTR; since PEP 475 (Python 3.5) Python retries it for us, so there
    is no EINTR loop to write -- and these threads never run signal handlers anyway.
    """
    buffer = bytearray(buffer_size)
    view = memoryview(buffer)
    while received := conn.recv_into(buffer):
        # sendall() blocks until every byte is in the kernel's send buffer (looping over
        # partial writes); that block is the backpressure described at the top of this file.
        conn.sendall(view[:received])
    # recv() returned 0 bytes: the client shut down its sending side. Everything it sent has
    # already gone back through sendall(); closing now sends our FIN and the client reads EOF.


if __name__ == "__main__":
    main()
