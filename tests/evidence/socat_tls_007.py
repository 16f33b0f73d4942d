"""socat's OPENSSL-LISTEN never times out a stalled TLS handshake (TLS-007, a SHOULD).

Each connection gets a forked child that sits in SSL_accept() until the client speaks, for
as long as the client likes: a client that connects and says nothing holds a process and a
descriptor forever (a slow-loris on the handshake). socat has no handshake deadline option;
its ``-T`` inactivity timeout only starts once the data transfer does. Control: while the
silent client waits, a real TLS client is served at once, so socat is not stuck, only patient.

    python3 tests/evidence/socat_tls_007.py     # exit status 0: reproduced
"""

from __future__ import annotations

import selectors
import socket
import ssl
import sys
import tempfile
from pathlib import Path

import trustme
from _evidence import TIMEOUT_S, running, verdict

WATCH_S = 12.0  # longer than any handshake timeout a server would reasonably choose for loopback
COMMAND = "socat OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={certkey},verify=0 EXEC:cat"


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes (EOF or reset) the silent connection within ``seconds``."""
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        if not selector.select(seconds):
            return False
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def tls_echo(port: int, ca: Path) -> bool:
    context = ssl.create_default_context(cafile=str(ca))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(b"ping")
        return tls.recv(4) == b"ping"


def main() -> int:
    with tempfile.TemporaryDirectory() as directory:
        authority = trustme.CA()
        certkey, ca = Path(directory, "server.pem"), Path(directory, "ca.pem")
        authority.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(certkey))
        authority.cert_pem.write_to_path(str(ca))
        with (
            running(COMMAND.replace("{certkey}", str(certkey))) as (_, port),
            socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as silent,
        ):
            served = tls_echo(port, ca)
            closed = closed_within(silent, WATCH_S)
    print(f"{COMMAND}:\n  a TLS client beside the silent one was served: {served}")
    print(f"  the silent (no ClientHello) connection was closed within {WATCH_S} s: {closed}")
    return verdict(served and not closed, "no handshake deadline")


if __name__ == "__main__":
    sys.exit(main())
