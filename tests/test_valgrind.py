"""The release C++ server under Valgrind's memcheck: a short workout, then a clean bill.

The sanitizer rows (cpp-asan, cpp-tsan) test builds made for testing; this tests the binary
that ships (cpp/build/server, -O2), which the sanitizers never see. Memcheck catches what
would hide there: a read of uninitialised or freed memory, a write past a buffer, a
Connection or its pending-output buffer never freed (the server frees every connection it
still holds when it stops, so a leak at exit is a real one). The workout goes down each path
that owns memory: many connections at once on two loops, a large echo that queues output, a
client that stops reading until the server throttles it, a client that resets while its echo
is pending, and connections still open -- one with queued output -- when SIGTERM arrives.
It runs twice: over TCP, and over TLS (OpenSSL's objects per connection, the handshake, the
buffered records, close_notify), with a trustme certificate in a temporary directory.
"""

from __future__ import annotations

import random
import re
import shutil
import socket
from collections.abc import Iterator

import pytest

from conformance.harness.build import BuildError, ensure_cpp_built
from conformance.harness.duplex import connect, exchange
from conformance.harness.payloads import assert_same_stream, seeded_payload
from conformance.harness.pressure import exchange_crowd, push_until_stalled, read_back, reset
from conformance.harness.servers import Address, ServerProcess, launch
from conformance.harness.targets import cpp_without_tls
from conformance.harness.tls import TestCertificates

VALGRIND = shutil.which("valgrind")
MEMCHECK = (
    "--error-exitcode=99",  # any memcheck error (invalid access, or a leak of the kinds below)
    "--leak-check=full",
    "--errors-for-leak-kinds=definite,indirect",
    "--show-leak-kinds=definite,indirect",
    "--num-callers=30",
)
STARTUP_TIMEOUT_S = 60.0  # valgrind translates the program before it runs a line of it
STOP_TIMEOUT_S = 30.0  # the leak check runs after SIGTERM, before the process exits
REPORT_TAIL = 8000
SEED = 7  # the workout's payloads; change it to replay a different one
REPLAY = f"tests/test_valgrind.py with SEED = {SEED}"
# More than the socket buffers on both sides (up to tens of MiB with autotuning) and the
# server's 1 MiB bound on pending output hold: a client that sends this without reading stalls.
UNREAD = 48 << 20

pytestmark = pytest.mark.skipif(VALGRIND is None, reason="valgrind is not on PATH (apt-get install valgrind)")


@pytest.fixture(params=["tcp", "tls"])
def memcheck(request: pytest.FixtureRequest) -> Iterator[tuple[ServerProcess, Address]]:
    """The release server with two event loops, under memcheck; the test stops it."""
    assert VALGRIND is not None
    try:
        build = ensure_cpp_built()
    except BuildError as exc:
        pytest.fail(str(exc), pytrace=False)
    argv = [VALGRIND, *MEMCHECK, str(build / "server"), "--port", "0", "--threads", "2"]
    if request.param == "tls" and (reason := cpp_without_tls(build / "server")):
        pytest.skip(reason)
    certificates = TestCertificates()
    if request.param == "tls":
        argv += ["--tls-cert", str(certificates.cert), "--tls-key", str(certificates.key)]
    server, address = launch(argv, timeout=STARTUP_TIMEOUT_S)
    tls = certificates.client() if request.param == "tls" else None
    try:
        yield server, Address(address.host, address.port, tls)
    finally:
        certificates.cleanup()
    if server.process.poll() is None:  # the test failed before it stopped the server
        server.kill()


def crowd(address: Address, rng: random.Random) -> None:
    """Eight clients at once, spread over both loops by SO_REUSEPORT."""
    payloads = [rng.randbytes(rng.randrange(1, 200_000)) for _ in range(8)]
    for index, (payload, outcome) in enumerate(zip(payloads, exchange_crowd(address, payloads), strict=True)):
        assert_same_stream(payload, outcome.received, what=f"crowd client {index} of 8", data=REPLAY)


def large_echo(address: Address) -> None:
    payload = seeded_payload(4 << 20, SEED)
    outcome = exchange(address, payload, read_sizes=[4096], timeout=60.0)
    assert_same_stream(payload, outcome.received, what="4 MiB read in 4 KiB recv()s", data=REPLAY)


def throttled(address: Address) -> None:
    """A client that does not read until the server stops reading it, then reads it all."""
    payload = seeded_payload(UNREAD, SEED)
    with connect(address, timeout=30.0) as sock:
        push = push_until_stalled(sock, payload, timeout=30.0)
        assert push.stalled, f"{UNREAD} bytes went out without the server throttling the client"
        read_back(sock, payload, push, what="a throttled client")


def reset_with_pending_echo(address: Address) -> None:
    """The server is left with output it can never send: its send fails, it must free it."""
    sock = connect(address, timeout=30.0)
    assert push_until_stalled(sock, seeded_payload(UNREAD, SEED), timeout=30.0).stalled
    reset(sock)


def test_memcheck_finds_nothing(memcheck: tuple[ServerProcess, Address]) -> None:
    """The release server MUST show no invalid memory access and leak nothing, after serving
    every kind of connection and stopping with connections still open."""
    server, address = memcheck
    rng = random.Random(SEED)
    crowd(address, rng)
    large_echo(address)
    throttled(address)
    reset_with_pending_echo(address)
    with connect(address, timeout=30.0) as idle, connect(address, timeout=30.0) as stalled:
        assert push_until_stalled(stalled, seeded_payload(UNREAD, SEED), timeout=30.0).stalled
        idle.sendall(b"still here")
        assert idle.recv(len(b"still here"), socket.MSG_WAITALL) == b"still here"
        code, _ = server.stop(timeout=STOP_TIMEOUT_S)
    report = server.stderr_text(limit=1 << 20)
    evidence = f"memcheck's report (tail):\n{report[-REPORT_TAIL:]}"
    assert "ERROR SUMMARY: 0 errors" in report, f"memcheck reported errors or did not finish; {evidence}"
    assert not re.search(r"(definitely|indirectly) lost: [1-9]", report), f"a leak; {evidence}"
    assert code == 0, f"exit status {code} after SIGTERM (99: memcheck errors); {evidence}"
