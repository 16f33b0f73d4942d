"""TLS: what an echo server owes its clients once it speaks TLS, beyond echoing the decrypted stream.

Every other family runs over TLS too, so echo, half-close, flow control and the rest are tested
on the decrypted byte stream already. This family tests what only TLS has:

* the protocol versions: TLS 1.3 and 1.2 work, TLS 1.1 and older are refused;
* clients that do not speak TLS -- a plain-TCP client, a port scanner's random bytes, a client
  that rejects the certificate -- are turned away without their bytes echoed in the clear (a
  server that "falls back" to plain TCP), and without disturbing anyone else;
* a client that starts a handshake and stalls blocks nobody (the classic bug: the handshake runs
  in the accept loop, so one silent client stops the whole server) and is eventually closed;
* the end of a stream: the server ends with close_notify (without it, a client cannot tell a
  complete echo from a cut one, RFC 8446 section 6.1); a client's close_notify alone, without a
  TCP FIN, ends the request (a server that waits for the FIN hangs); a client that vanishes
  without close_notify (FIN or reset) is dropped, its descriptor released.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import ssl
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import trustme
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.harness.duplex import connect, exchange, read_to_eof
from conformance.harness.payloads import assert_same_stream, seeded_payload
from conformance.harness.pressure import push_until_stalled, reset
from conformance.harness.resources import assert_back_to_baseline, steady_baseline
from conformance.harness.scenarios import NO_SHRINK, only_on, scenario
from conformance.harness.servers import Address
from conformance.harness.targets import Target, fresh_server
from conformance.harness.tls import ClientTLS, TLSHandshakeError, TLSStream, connect_tls
from impls.table import TLS

pytestmark = only_on(TLS)  # the TLS family runs on the TLS targets alone

KiB, MiB = 1 << 10, 1 << 20
CLOSE_BOUND_S = 10.0  # a connection the server must turn away is closed within this
PROMPT_S = 5.0  # a TLS echo for a new client while others stall completes within this
# Built-in servers time a handshake out after 10 s (--tls-handshake-timeout); 5 s of margin.
HANDSHAKE_TIMEOUT_BOUND_S = 15.0
EOF_TIMEOUT_S = 10.0
PUSH_LIMIT = 32 * MiB  # as HALF-004: a server that queues without bound has this much queued
STALLED_PER_KIND = 2
ABRUPT_CLIENTS = 5
LEGACY_VERSIONS = {0x0301: "TLSv1", 0x0302: "TLSv1.1"}

PLAINTEXT = {
    "line": b"hello\n",
    "http": b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
}


def client_tls(target: Target) -> ClientTLS:
    """How the suite trusts this TLS target (the test CA, --tls-cafile or --tls-insecure)."""
    tls = target.spec.client_tls
    assert tls is not None, f"{target.name}: a TLS target without client TLS settings"
    return tls


def open_tls(address: Address, tls: ClientTLS, timeout: float = CLOSE_BOUND_S) -> TLSStream:
    """A TLS connection with the given client settings, its handshake complete."""
    raw = socket.create_connection((address.host, address.port), timeout=timeout)
    return connect_tls(raw, tls, address.host, timeout, str(address))


def client_hello(tls: ClientTLS, host: str) -> bytes:
    """The first flight a client with these settings sends (its ClientHello record), made offline."""
    outgoing = ssl.MemoryBIO()
    tls_object = tls.context.wrap_bio(ssl.MemoryBIO(), outgoing, server_hostname=tls.server_hostname(host))
    with contextlib.suppress(ssl.SSLWantReadError):
        tls_object.do_handshake()
    return outgoing.read()


def assert_still_serves(address: Address, after: str) -> None:
    """A new TLS client gets its echo promptly."""
    payload = seeded_payload(4 * KiB, seed=7)
    try:
        outcome = exchange(address, payload, half_close=False, timeout=PROMPT_S)
    except (AssertionError, OSError) as exc:
        raise AssertionError(f"after {after}, a new TLS client got no echo: {exc}") from exc
    assert_same_stream(payload, outcome.received, what=f"a new TLS connection after {after}")


# --- versions --------------------------------------------------------------------------------


def assert_echo_with_only(target: Target, version: ssl.TLSVersion, name: str) -> None:
    try:
        stream = open_tls(target.address, client_tls(target).limited_to(version))
    except TLSHandshakeError as exc:
        raise AssertionError(f"a client offering only {name}: {exc}") from exc
    with stream:
        negotiated = f"{stream.version()} with {stream.cipher()}"
        assert stream.version() == name, f"a client offering only {name} negotiated {negotiated}"
        payload = seeded_payload(64 * KiB, seed=13)
        outcome = exchange(target.address, payload, half_close=False, sock=stream, timeout=EOF_TIMEOUT_S)
    what = f"a {negotiated} connection to {target.name}"
    assert_same_stream(payload, outcome.received, what=what, data="64 KiB of random bytes from seed 13")


@scenario("TLS-001", "a client offering only TLS 1.3 negotiates TLSv1.3 and gets its echo")
def test_tls13(target: Target) -> None:
    """The server MUST speak TLS 1.3: the handshake negotiates TLSv1.3 and the echo is byte-exact."""
    assert_echo_with_only(target, ssl.TLSVersion.TLSv1_3, "TLSv1.3")


@scenario("TLS-002", "a client offering only TLS 1.2 negotiates TLSv1.2 and gets its echo", "SHOULD")
def test_tls12(target: Target) -> None:
    """The server SHOULD still speak TLS 1.2, which many clients and libraries use."""
    assert_echo_with_only(target, ssl.TLSVersion.TLSv1_2, "TLSv1.2")


def legacy_client(tls: ClientTLS) -> ClientTLS:
    """A client that offers only TLS 1.1 (OpenSSL 3 needs security level 0 to offer it at all)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # ssl.TLSVersion.TLSv1_1 is deprecated
        legacy = tls.limited_to(ssl.TLSVersion.TLSv1_1)
    legacy.context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return legacy


def offered_version(hello: bytes) -> int:
    """The client_version of a ClientHello record (record header 5 bytes, handshake header 4)."""
    return int.from_bytes(hello[9:11], "big") if len(hello) >= 11 else 0


@scenario("TLS-003", "a client offering only TLS 1.1 is refused", "SHOULD")
def test_refuses_tls11(target: Target) -> None:
    """The server SHOULD refuse TLS 1.1 and older (RFC 8996): the handshake fails."""
    legacy = legacy_client(client_tls(target))
    try:
        version = offered_version(client_hello(legacy, target.address.host))
    except ssl.SSLError as exc:
        pytest.skip(f"this OpenSSL ({ssl.OPENSSL_VERSION}) cannot offer TLS 1.1 at all: {exc}")
    if version not in LEGACY_VERSIONS:
        pytest.skip(f"this OpenSSL offers client_version {version:#06x}, not TLS 1.1")
    try:
        stream = open_tls(target.address, legacy)
    except TLSHandshakeError:
        return  # refused: what the scenario wants
    with stream:
        raise AssertionError(
            f"the server accepted a client offering only TLS 1.1: negotiated {stream.version()} "
            f"with {stream.cipher()}"
        )


# --- clients that do not speak TLS -----------------------------------------------------------


def assert_turned_away(target: Target, data: bytes, what: str) -> None:
    """``data`` sent in the clear is not echoed, the connection is closed, the server serves on."""
    address = target.address
    with socket.create_connection((address.host, address.port), timeout=CLOSE_BOUND_S) as sock:
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):  # it may close early: fine
            sock.sendall(data)
        outcome = read_to_eof(sock, CLOSE_BOUND_S)
    answer = f"{len(outcome.received)} bytes back, starting {outcome.received[:48].hex(' ')}"
    assert data not in outcome.received, f"the server echoed {what} in the clear: {answer}"
    assert outcome.eof or outcome.reset, (
        f"the server kept a connection that sent {what} open for {CLOSE_BOUND_S} s ({answer})"
    )
    assert_still_serves(address, f"a client sent {what}")


@scenario("TLS-004", "a plain-TCP client on the TLS port: no echo in the clear, closed, others served")
@pytest.mark.parametrize("kind", sorted(PLAINTEXT))
def test_plaintext_client(target: Target, kind: str) -> None:
    """The server MUST NOT echo a plain-TCP client's bytes, MUST close that connection within 10 s,
    and MUST keep serving TLS clients."""
    assert_turned_away(target, PLAINTEXT[kind], f"plaintext {PLAINTEXT[kind]!r}")


# Random bytes, but never the start of a plausible record: OpenSSL reads a 5-byte record header
# and, if its version byte says 3 (or the first byte an SSLv2 hello), waits for the rest of the
# record. That is a stalled handshake (TLS-007), timed out later; here the bytes are garbage
# from the fifth byte on, so a correct server rejects them at once.
garbage = st.builds(
    lambda first, second, rest: bytes([first, second]) + rest,
    st.integers(0x00, 0x7F),  # high bit clear: not an SSLv2-format ClientHello
    st.integers(0x00, 0xFF).filter(lambda byte: byte != 0x03),  # not a TLS record's version
    st.binary(min_size=14, max_size=16 * KiB),  # at least 16 bytes: longer than an alert record
)


@scenario("TLS-005", "random bytes on the TLS port: no echo in the clear, closed, others served")
@settings(max_examples=5, phases=NO_SHRINK)
@given(data=garbage)
def test_random_bytes(target: Target, data: bytes) -> None:
    """The server MUST NOT echo random bytes, MUST close that connection within 10 s, and MUST keep
    serving TLS clients (a port scanner must not take it down)."""
    assert_turned_away(target, data, f"{len(data)} random bytes ({data[:8].hex(' ')} ...)")


# --- stalled handshakes ----------------------------------------------------------------------


@dataclass
class Stalled:
    """A connection whose handshake the client never finishes."""

    sock: socket.socket
    kind: str
    closed_after_s: float | None = None

    def describe(self, index: int) -> str:
        fate = "still open" if self.closed_after_s is None else f"closed after {self.closed_after_s:.2f} s"
        return f"connection {index} ({self.kind}): {fate}"


def stall_kinds(target: Target) -> list[tuple[str, bytes]]:
    hello = client_hello(client_tls(target), target.address.host)
    half = len(hello) // 2
    return [
        ("connected, sent nothing", b""),
        (f"sent {half} of the {len(hello)} bytes of a ClientHello", hello[:half]),
        (f"sent a whole ClientHello ({len(hello)} bytes), then nothing", hello),
    ]


@contextlib.contextmanager
def stalled_handshakes(target: Target) -> Iterator[list[Stalled]]:
    """STALLED_PER_KIND connections of each kind of stall, closed on exit."""
    address = target.address
    stalled: list[Stalled] = []
    with contextlib.ExitStack() as stack:
        for kind, sent in stall_kinds(target) * STALLED_PER_KIND:
            sock = stack.enter_context(
                socket.create_connection((address.host, address.port), timeout=CLOSE_BOUND_S)
            )
            sock.sendall(sent)
            stalled.append(Stalled(sock, kind))
        yield stalled


def describe_all(stalled: list[Stalled]) -> str:
    return "\n  ".join(connection.describe(index) for index, connection in enumerate(stalled))


@scenario("TLS-006", "stalled handshakes (silent, half a ClientHello, no Finished) block no one")
def test_stalled_handshakes_block_no_one(target: Target) -> None:
    """The server MUST serve a new TLS client promptly (within 5 s) while other clients stall in
    the handshake: the handshake never runs in the accept loop."""
    payload = seeded_payload(16 * KiB, seed=6)
    with stalled_handshakes(target) as stalled:
        started = time.monotonic()
        try:
            outcome = exchange(target.address, payload, half_close=False, timeout=PROMPT_S)
        except (AssertionError, OSError) as exc:
            raise AssertionError(
                f"with {len(stalled)} stalled handshakes open, a new TLS client got no echo within "
                f"{PROMPT_S} s: {exc}\n  {describe_all(stalled)}"
            ) from exc
        elapsed = time.monotonic() - started
    assert_same_stream(payload, outcome.received, what="the new TLS client's connection")
    assert elapsed <= PROMPT_S, f"the new TLS client's handshake and echo took {elapsed:.2f} s"


def wait_for_closes(stalled: list[Stalled], timeout: float) -> None:
    """Watch every stalled connection at once until the server closes each or the deadline passes."""
    started = time.monotonic()
    deadline = started + timeout
    with selectors.DefaultSelector() as selector:
        for connection in stalled:
            selector.register(connection.sock, selectors.EVENT_READ, connection)
        while selector.get_map() and (remaining := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(remaining):
                watched: Stalled = key.data
                try:
                    closed = not watched.sock.recv(64 * KiB)  # an alert before the close is fine
                except ConnectionResetError:
                    closed = True
                if closed:
                    watched.closed_after_s = time.monotonic() - started
                    selector.unregister(watched.sock)


@scenario("TLS-007", f"stalled handshakes are closed within {HANDSHAKE_TIMEOUT_BOUND_S:.0f} s", "SHOULD")
def test_stalled_handshakes_time_out(target: Target) -> None:
    """The server SHOULD close a connection whose handshake does not complete within its handshake
    timeout (10 s for the built-in servers): otherwise idle connections exhaust its descriptors."""
    with stalled_handshakes(target) as stalled:
        wait_for_closes(stalled, HANDSHAKE_TIMEOUT_BOUND_S)
    still_open = sum(1 for connection in stalled if connection.closed_after_s is None)
    assert not still_open, (
        f"after {HANDSHAKE_TIMEOUT_BOUND_S} s, {still_open} of {len(stalled)} stalled handshakes are "
        f"still open:\n  {describe_all(stalled)}"
    )


# --- the end of the stream -------------------------------------------------------------------


@scenario("TLS-008", "after the client's close_notify and FIN: the whole echo, then close_notify")
def test_server_sends_close_notify(target: Target) -> None:
    """The server MUST end its stream with close_notify before closing TCP: without it the client
    cannot tell a complete echo from a truncated one (RFC 8446 section 6.1)."""
    payload = seeded_payload(256 * KiB, seed=9)
    outcome = exchange(target.address, payload, timeout=EOF_TIMEOUT_S)
    how = "256 KiB random bytes (seed 9), then close_notify and FIN"
    assert_same_stream(payload, outcome.received, what=f"one TLS connection to {target.name}", data=how)
    assert not outcome.reset, f"the server reset the connection instead of closing it ({how})"
    assert outcome.eof, f"the server did not close after the echo ({how})"
    assert not outcome.truncated, f"the server closed TCP without sending close_notify ({how})"


def abandon_mid_echo(address: Address, how: str, index: int) -> None:
    """Send 256 KiB, read the first echoed bytes, then vanish without close_notify."""
    stream = connect(address, timeout=CLOSE_BOUND_S)
    assert isinstance(stream, TLSStream)
    with contextlib.closing(stream.raw):
        stream.sendall(seeded_payload(256 * KiB, index))
        assert stream.recv(1), f"connection {index}: the server closed instead of echoing"
        if how == "reset":
            reset(stream)
            return
        stream.raw.shutdown(socket.SHUT_WR)  # a TCP FIN, no close_notify
        # The server may send the rest of the echo, an alert, a close_notify: only its close counts.
        outcome = read_to_eof(stream.raw, CLOSE_BOUND_S)
    assert outcome.eof or outcome.reset, (
        f"connection {index}: {CLOSE_BOUND_S} s after a TCP FIN without close_notify, the server "
        f"has not closed ({len(outcome.received)} more bytes of TLS records received)"
    )


@scenario("TLS-009", "clients that vanish without close_notify (FIN, reset) mid-echo are dropped, fds freed")
@pytest.mark.parametrize("how", ["fin", "reset"])
def test_abrupt_close(target: Target, how: str) -> None:
    """A TCP FIN or reset without close_notify in the middle of an echo: the server MUST drop that
    connection (releasing its descriptor), not hang on it, and MUST keep serving others."""
    with fresh_server(target) as (server, address):
        assert_still_serves(address, "the server started")  # warm-up before the baseline
        baseline = steady_baseline(server.pid)
        for index in range(ABRUPT_CLIENTS):
            abandon_mid_echo(address, how, index)
        what = f"{ABRUPT_CLIENTS} clients vanished mid-echo ({how}, no close_notify)"
        assert_back_to_baseline(server.pid, baseline, what)
        assert_still_serves(address, f"{ABRUPT_CLIENTS} clients vanished mid-echo ({how})")


@scenario("TLS-010", "close_notify alone (no FIN) after MiBs in flight: the whole echo, close_notify, EOF")
def test_close_notify_without_fin(target: Target) -> None:
    """The client's close_notify MUST end the request by itself: the server sends back every byte
    still queued, then its close_notify, then closes TCP -- without waiting for the client's FIN."""
    payload = seeded_payload(PUSH_LIMIT, seed=10)
    stream = connect(target.address, timeout=EOF_TIMEOUT_S)
    assert isinstance(stream, TLSStream)
    with stream:
        push = push_until_stalled(stream, payload, quiet_s=0.3, timeout=EOF_TIMEOUT_S)
        stream.send_close_notify()
        outcome = read_to_eof(stream, EOF_TIMEOUT_S + push.sent / MiB)
        tcp_end = read_to_eof(stream.raw, EOF_TIMEOUT_S) if stream.close_notify_received else outcome
    how = (
        f"the first {push.sent} bytes of 32 MiB random bytes (seed 10) sent without reading "
        f"(stalled={push.stalled}), then close_notify without a TCP FIN, then read"
    )
    assert_same_stream(payload[: push.sent], outcome.received, what="the TLS connection", data=how)
    assert not outcome.reset, f"the server reset the connection instead of closing it ({how})"
    assert outcome.eof, f"the server neither sent close_notify nor closed within the time ({how})"
    assert stream.close_notify_received, f"the server closed TCP without sending close_notify ({how})"
    assert tcp_end.received == b"", f"{len(tcp_end.received)} bytes arrived after the server's close_notify"
    assert tcp_end.eof, (
        f"after its close_notify the server did not close TCP within {EOF_TIMEOUT_S} s "
        f"(reset={tcp_end.reset}; {how})"
    )


# --- a client that rejects the server ------------------------------------------------------


@scenario("TLS-011", "a client that rejects the certificate is closed, and others are served")
def test_client_rejects_certificate(target: Target) -> None:
    """The server MUST close a connection whose client aborts the handshake with a fatal alert
    (it does not trust the certificate) within 10 s, and MUST keep serving."""
    distrustful = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    trustme.CA().configure_trust(distrustful)  # some other CA: the server's certificate fails
    address = target.address
    raw = socket.create_connection((address.host, address.port), timeout=CLOSE_BOUND_S)
    with contextlib.closing(raw):
        stream = TLSStream(raw, ClientTLS(distrustful), address.host)
        with pytest.raises(TLSHandshakeError, match="certificate verify failed"):
            stream.handshake(CLOSE_BOUND_S, str(address))
        stream.flush()  # the client's alert (unknown_ca) goes out
        outcome = read_to_eof(raw, CLOSE_BOUND_S)
    assert outcome.eof or outcome.reset, (
        f"the server kept the connection open for {CLOSE_BOUND_S} s after the client's fatal alert "
        f"({len(outcome.received)} bytes received)"
    )
    assert_still_serves(address, "a client rejected the certificate")
