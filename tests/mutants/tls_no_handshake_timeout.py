# MUTANT: runs the handshake in the connection's thread, but with no timeout | expect: TLS-007 | strict | transport: tls
"""The threaded TLS echo server (tests/mutants/_kit.py) doing the handshake in the right place
(the connection's own thread) but never bounding it: every client that connects and stalls holds
a thread and a descriptor for ever, and a few thousand idle connections exhaust the server.

    python3 tests/mutants/tls_no_handshake_timeout.py PORT CERT KEY
"""

import socket
import ssl

from _kit import ThreadedTLSEcho


class NoHandshakeTimeout(ThreadedTLSEcho):
    def handshake(self, conn: socket.socket) -> ssl.SSLSocket:
        return self.context.wrap_socket(conn, server_side=True)  # the bug: no settimeout() first


NoHandshakeTimeout().main()
