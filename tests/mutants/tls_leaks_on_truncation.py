# MUTANT: a connection cut without close_notify (FIN or reset) is never closed nor forgotten | expect: TLS-009 | transport: tls
"""The threaded TLS echo server (tests/mutants/_kit.py) keeping its connections in a registry (for
a "who is connected" report) and removing and closing them only on the clean path: a client that
vanishes without close_notify -- a TCP FIN (SSLEOFError) or a reset -- takes the error path,
which only logs, so its descriptor stays open for ever and its TCP connection is never closed.

    python3 tests/mutants/tls_leaks_on_truncation.py PORT CERT KEY
"""

import socket
import ssl
import sys

from _kit import HANDSHAKE_TIMEOUT_S, ThreadedTLSEcho

clients = set()


class LeaksOnTruncation(ThreadedTLSEcho):
    def serve(self, conn: socket.socket) -> None:
        try:
            tls = self.handshake(conn)
        except OSError:
            return
        clients.add(tls)
        try:
            self.echo(tls)
            tls.unwrap()
        except OSError as exc:
            print(f"client error: {exc}", file=sys.stderr)
            return  # the bug: the error path neither closes the socket nor removes it from clients
        clients.discard(tls)
        tls.close()

    def handshake(self, conn: socket.socket) -> ssl.SSLSocket:
        conn.settimeout(HANDSHAKE_TIMEOUT_S)
        # suppress_ragged_eofs=False: a FIN without close_notify is an error (SSLEOFError), not EOF
        tls = self.context.wrap_socket(conn, server_side=True, suppress_ragged_eofs=False)
        tls.settimeout(None)
        return tls


LeaksOnTruncation().main()
