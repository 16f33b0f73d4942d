"""TLS for the test client: a TLS connection that behaves like a socket, and the test certificates.

Every scenario family runs over TLS too, with the same test client. So the TLS connection has a
socket's surface (send, recv, sendall, shutdown, settimeout, setblocking, close, fileno) and a
socket's non-blocking semantics, and the loops in duplex.py and pressure.py stay what they are.

It is built on memory BIOs (``SSLContext.wrap_bio``) rather than ``ssl.SSLSocket``, because the
suite must control what the standard socket wrapper decides for us:

* Half-close. ``SSLSocket.shutdown(SHUT_WR)`` drops TLS and half-closes TCP; ``unwrap()`` sends
  close_notify and then *waits for the peer's*, discarding -- or, with OpenSSL 3, failing on --
  application data that is still on its way: exactly the echo the client wants to read after
  its close_notify. Here ``shutdown(SHUT_WR)`` sends close_notify (setting aside whatever is
  already buffered, so OpenSSL never sees it during the shutdown), then a TCP FIN; reading goes
  on until the server's close_notify.
* Buffering that a selector cannot see. Decrypted bytes and whole records can wait inside the
  TLS layer while the socket itself is not readable; ``has_buffered_input()`` tells the loops
  to read again without waiting. Ciphertext the kernel did not take yet waits in ``_unsent``;
  ``pending_output()`` tells the loops to keep write interest until it is out.
* Backpressure. At most ``SEND_BUFFER`` bytes of ciphertext wait here; beyond that ``send``
  raises BlockingIOError like a full kernel buffer, so a client that does not read still
  stalls against a server that applies backpressure.

How the server ended the stream is recorded: ``close_notify_received`` after its close_notify,
``truncated`` when TCP ended without one (RFC 8446 section 6.1: each party MUST send
close_notify before closing its write side; without it, a truncated echo is indistinguishable
from a complete one).
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import ssl
import struct
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import trustme

RECORD_PLAINTEXT = 16 * 1024  # the most plaintext one TLS record carries
RECORD_WIRE = RECORD_PLAINTEXT + 256  # one record on the wire, header and tag included
SEND_BUFFER = 64 * 1024  # ciphertext held here before send() reports EAGAIN
READ_SIZE = 64 * 1024
TEST_NAMES = ("localhost", "127.0.0.1", "::1")

T = TypeVar("T")


class TLSHandshakeError(AssertionError):
    """The TLS handshake did not complete: timed out, refused or failed verification."""


@dataclass(frozen=True)
class ClientTLS:
    """How the test client speaks TLS to a server: the context, and whether it checks the
    certificate (against the host it connects to: a name, 127.0.0.1 or ::1)."""

    context: ssl.SSLContext
    cafile: str | None = None  # the CA it trusts, for other clients (None: no verification)

    @classmethod
    def trusting(cls, cafile: str | Path | None) -> ClientTLS:
        """Verify the server against ``cafile``; with None, verify nothing (``--tls-insecure``)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if cafile is None:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return cls(context)
        context.load_verify_locations(cafile=str(cafile))
        return cls(context, str(cafile))

    def server_hostname(self, host: str) -> str | None:
        """The name to check (and send as SNI, unless it is an IP address); None: no check."""
        return host if self.context.check_hostname else None

    def limited_to(self, version: ssl.TLSVersion) -> ClientTLS:
        """The same trust, speaking only ``version`` (for the per-version TLS scenarios)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = self.context.check_hostname
        context.verify_mode = self.context.verify_mode
        if self.context.verify_mode != ssl.CERT_NONE:
            context.load_verify_locations(cadata=_ca_certificates(self.context))
        context.minimum_version = context.maximum_version = version
        return ClientTLS(context, self.cafile)


def _ca_certificates(context: ssl.SSLContext) -> str:
    return "".join(ssl.DER_cert_to_PEM_cert(der) for der in context.get_ca_certs(binary_form=True))


class TestCertificates:
    """A throwaway CA and a server certificate for localhost, 127.0.0.1 and ::1 (trustme).

    The files live in a temporary directory, removed by ``cleanup()``; nothing is written
    anywhere else.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self) -> None:
        self._directory = tempfile.TemporaryDirectory(prefix="echo-tls-")
        root = Path(self._directory.name)
        authority = trustme.CA()
        leaf = authority.issue_cert(*TEST_NAMES)
        self.ca = root / "ca.pem"
        self.cert = root / "server.pem"
        self.key = root / "server.key"
        self.cert_and_key = root / "server-and-key.pem"  # for servers that want one file (socat)
        authority.cert_pem.write_to_path(str(self.ca))
        leaf.cert_chain_pems[0].write_to_path(str(self.cert))
        for extra in leaf.cert_chain_pems[1:]:
            extra.write_to_path(str(self.cert), append=True)
        leaf.private_key_pem.write_to_path(str(self.key))
        self.cert_and_key.write_bytes(self.cert.read_bytes() + self.key.read_bytes())

    def client(self) -> ClientTLS:
        return ClientTLS.trusting(self.ca)

    def files(self) -> tuple[Path, Path]:
        """Certificate and key, as a server's --tls-cert and --tls-key."""
        return self.cert, self.key

    def placeholders(self) -> dict[str, str]:
        """What a --server-cmd template may use: {cert}, {key}, {certkey} (both in one file), {ca}."""
        return {
            "cert": str(self.cert),
            "key": str(self.key),
            "certkey": str(self.cert_and_key),
            "ca": str(self.ca),
        }

    def cleanup(self) -> None:
        self._directory.cleanup()


class TLSStream:
    """A client TLS connection over a TCP socket, with the socket's interface (see the module)."""

    def __init__(self, raw: socket.socket, tls: ClientTLS, host: str) -> None:
        self.raw = raw
        self._timeout = raw.gettimeout()
        raw.setblocking(False)  # the TLS layer never blocks; timeouts are emulated (_blocking)
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = tls.context.wrap_bio(
            self._incoming, self._outgoing, server_hostname=tls.server_hostname(host)
        )
        self._unsent = bytearray()  # ciphertext the kernel has not taken yet
        self._set_aside = bytearray()  # plaintext decrypted early, while sending close_notify
        self._more_records = False  # the incoming BIO may still hold whole records
        self._fin_wanted = self._fin_sent = False
        self._abortive = False  # SO_LINGER {1, 0} was set: close() must reset, not say goodbye
        self.raw_eof = False
        self.close_notify_sent = False
        self.close_notify_received = False
        self.truncated = False  # TCP EOF without the server's close_notify

    # --- the handshake -------------------------------------------------------------------

    def handshake(self, timeout: float, where: str) -> None:
        """Complete the handshake within ``timeout`` seconds or raise TLSHandshakeError."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as exc:
                raise TLSHandshakeError(f"TLS handshake with {where} failed: {exc}") from exc
            self._flush()
            if self.raw_eof:
                raise TLSHandshakeError(f"TLS handshake with {where}: the server closed the connection")
            if not self._wait(deadline, selectors.EVENT_READ):
                raise TLSHandshakeError(f"TLS handshake with {where} did not complete within {timeout} s")
            self._fill()
        self._flush()

    def version(self) -> str | None:
        return self._tls.version()

    def cipher(self) -> str | None:
        cipher = self._tls.cipher()
        return cipher[0] if cipher else None

    # --- the socket surface --------------------------------------------------------------

    def fileno(self) -> int:
        return self.raw.fileno()

    def gettimeout(self) -> float | None:
        return self._timeout

    def settimeout(self, timeout: float | None) -> None:
        self._timeout = timeout

    def setblocking(self, flag: bool) -> None:
        self._timeout = None if flag else 0.0

    def setsockopt(self, level: int, option: int, value: int | bytes) -> None:
        if (level, option) == (socket.SOL_SOCKET, socket.SO_LINGER) and isinstance(value, bytes):
            self._abortive = struct.unpack("ii", value) == (1, 0)
        self.raw.setsockopt(level, option, value)

    def send(self, data: bytes | bytearray | memoryview) -> int:
        return self._blocking(lambda: self._send(data), selectors.EVENT_WRITE)

    def sendall(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        while view:
            view = view[self.send(view) :]
        if self._timeout != 0.0:
            self._blocking(self._drain, selectors.EVENT_WRITE)

    def recv(self, size: int, flags: int = 0) -> bytes:
        """Like socket.recv; of the flags, only MSG_WAITALL (wait for ``size`` bytes or EOF)."""
        if flags & ~socket.MSG_WAITALL:
            raise ValueError(f"TLSStream.recv supports only MSG_WAITALL, not flags {flags:#x}")
        data = self._blocking(lambda: self._recv(size), selectors.EVENT_READ)
        while flags and data and len(data) < size:
            wanted = size - len(data)
            more = self._blocking(lambda: self._recv(wanted), selectors.EVENT_READ)  # noqa: B023 - called at once
            if not more:
                break
            data += more
        return data

    def recv_into(self, buffer: bytearray | memoryview, size: int = 0) -> int:
        data = self.recv(size or len(buffer))
        memoryview(buffer)[: len(data)] = data
        return len(data)

    def shutdown(self, how: int) -> None:
        """SHUT_WR: close_notify, then a TCP FIN once it is out (at once when blocking)."""
        if how == socket.SHUT_RD:
            self.raw.shutdown(how)
            return
        self.send_close_notify()
        self._fin_wanted = True
        self._flush()
        if self._timeout != 0.0:
            self._blocking(self._drain, selectors.EVENT_WRITE)
        if how == socket.SHUT_RDWR:
            self.raw.shutdown(socket.SHUT_RD)

    def send_close_notify(self) -> None:
        """Say "no more data" at the TLS level only: the TCP connection stays open both ways.

        OpenSSL's shutdown (inside ``unwrap``) goes on to read the peer's close_notify and
        fails on application data it meets on the way; so every complete record is decrypted
        and set aside first, and the undecrypted rest is taken out of the BIO and put back.
        """
        if self.close_notify_sent:
            return
        self._set_aside += self._decrypt_everything()
        rest = b"" if self.raw_eof else self._incoming.read()
        try:
            self._tls.unwrap()
        except ssl.SSLWantReadError:
            pass  # our close_notify is written; the server's has not arrived yet
        except ssl.SSLError:
            if not self.raw_eof:
                raise
        if rest:
            self._incoming.write(rest)
        self.close_notify_sent = True
        self._flush()

    def close(self) -> None:
        """Close like a polite client (close_notify first, if the kernel takes it at once),
        or abortively after ``SO_LINGER {1, 0}``, as a plain socket would."""
        if not (self._abortive or self.close_notify_sent or self.raw.fileno() < 0):
            with contextlib.suppress(OSError):  # the connection is gone: no one to say goodbye to
                self.send_close_notify()
        self.raw.close()

    def __enter__(self) -> TLSStream:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- what the loops need beyond a socket ---------------------------------------------

    def has_buffered_input(self) -> bool:
        """recv() may return data now, though the socket itself may not be readable."""
        return bool(self._set_aside) or self._tls.pending() > 0 or self._more_records

    def pending_output(self) -> bool:
        """Ciphertext (or the FIN after close_notify) still waits to go out."""
        return bool(self._unsent) or self._outgoing.pending > 0 or (self._fin_wanted and not self._fin_sent)

    def flush(self) -> None:
        """Send what the kernel takes now of the pending ciphertext."""
        self._flush()

    # --- the non-blocking core -----------------------------------------------------------

    def _send(self, data: bytes | bytearray | memoryview) -> int:
        self._flush()
        if not data:
            return 0
        if len(self._unsent) >= SEND_BUFFER:
            raise BlockingIOError(errno.EAGAIN, "TLS send buffer full")
        written = self._tls.write(memoryview(data)[:RECORD_PLAINTEXT])
        self._flush()
        return written

    def _recv(self, size: int) -> bytes:
        if self._set_aside:
            data = bytes(self._set_aside[:size])
            del self._set_aside[:size]
            return data
        if self._incoming.pending < RECORD_WIRE:
            self._fill()  # never more than about a record ahead: a slow reader stays slow
        try:
            data = self._tls.read(size)
        except ssl.SSLWantReadError:
            self._more_records = False
            raise BlockingIOError(errno.EAGAIN, "no complete TLS record yet") from None
        except ssl.SSLZeroReturnError:
            data = b""
        except ssl.SSLEOFError:
            self.truncated = True
            return b""
        finally:
            self._flush()  # a post-handshake message (KeyUpdate) may have produced a reply
        if not data:
            self.close_notify_received = True
        self._more_records = self._incoming.pending > 0
        return data

    def _decrypt_everything(self) -> bytes:
        """Every byte of plaintext the TLS layer can produce now, without touching the socket."""
        data = bytearray()
        while True:
            try:
                chunk = self._tls.read(READ_SIZE)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                self.close_notify_received = True
                break
            except ssl.SSLEOFError:
                self.truncated = True
                break
            if not chunk:
                self.close_notify_received = True
                break
            data += chunk
        self._more_records = False
        return bytes(data)

    def _flush(self) -> None:
        self._unsent += self._outgoing.read()
        while self._unsent:
            try:
                sent = self.raw.send(self._unsent)
            except (BlockingIOError, InterruptedError):
                return
            del self._unsent[:sent]
        if self._fin_wanted and not self._fin_sent:
            self.raw.shutdown(socket.SHUT_WR)
            self._fin_sent = True

    def _fill(self) -> None:
        if self.raw_eof:
            return
        try:
            data = self.raw.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        if data:
            self._incoming.write(data)
        else:
            self._incoming.write_eof()
            self.raw_eof = True

    def _drain(self) -> None:
        self._flush()
        if self.pending_output():
            raise BlockingIOError(errno.EAGAIN, "ciphertext still waiting to be sent")

    def _blocking(self, operation: Callable[[], T], waits_for: int) -> T:
        """Run a non-blocking operation, or in blocking mode retry it until the timeout."""
        if self._timeout == 0.0:
            return operation()
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        while True:
            try:
                return operation()
            except BlockingIOError:
                if waits_for == selectors.EVENT_READ and self.has_buffered_input():
                    continue
            if not self._wait(deadline, waits_for):
                raise TimeoutError(errno.ETIMEDOUT, "timed out")

    def _wait(self, deadline: float | None, waits_for: int) -> bool:
        """Wait until the socket can make progress; flush on the way. False at the deadline."""
        events = waits_for | (selectors.EVENT_WRITE if self.pending_output() else 0)
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return False
        with selectors.DefaultSelector() as selector:
            selector.register(self.raw, events)
            ready = selector.select(remaining)
        if any(mask & selectors.EVENT_WRITE for _, mask in ready):
            self._flush()
        return bool(ready)


Stream = socket.socket | TLSStream


def connect_tls(raw: socket.socket, tls: ClientTLS, host: str, timeout: float, where: str) -> TLSStream:
    """Secure a connected TCP socket: the handshake completes here, within ``timeout``."""
    stream = TLSStream(raw, tls, host)
    try:
        stream.handshake(timeout, where)
    except BaseException:
        raw.close()
        raise
    return stream


def buffered_input(sock: Stream) -> bool:
    """The connection can return data without the socket becoming readable (TLS only)."""
    return isinstance(sock, TLSStream) and sock.has_buffered_input()


def pending_output(sock: Stream) -> bool:
    """The connection has bytes to send although the caller wrote nothing new (TLS only)."""
    return isinstance(sock, TLSStream) and sock.pending_output()


def flush(sock: Stream) -> None:
    if isinstance(sock, TLSStream):
        sock.flush()


def truncated(sock: Stream) -> bool:
    """The server's TCP stream ended without its close_notify (TLS only)."""
    return isinstance(sock, TLSStream) and sock.truncated
