# MUTANT: serves plain TCP on the TLS port when the first byte is not a TLS handshake | expect: TLS-004 | transport: tls
"""The threaded TLS echo server (tests/mutants/_kit.py) peeking at the first byte and, unless it
starts a TLS handshake record (0x16), "helpfully" echoing in plain TCP: whatever a client sends
by mistake in the clear comes back in the clear, and a downgrade is one byte away.

    python3 tests/mutants/tls_plaintext_fallback.py PORT CERT KEY
"""

import socket

from _kit import ThreadedEcho, ThreadedTLSEcho


class PlaintextFallback(ThreadedTLSEcho):
    def serve(self, conn: socket.socket) -> None:
        try:
            first = conn.recv(1, socket.MSG_PEEK)  # peeked: the byte stays for whoever reads on
        except OSError:
            conn.close()
            return
        if first != b"\x16":
            ThreadedEcho.serve(self, conn)  # the bug: a plain-TCP fallback on the TLS port
        else:
            super().serve(conn)


PlaintextFallback().main()
