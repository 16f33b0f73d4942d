# MUTANT: closes the TLS connection without close_notify (close() without unwrap()) | expect: TLS-008 | transport: tls
"""The threaded TLS echo server (tests/mutants/_kit.py) that, at the client's close_notify, simply
closes the socket: Python's SSLSocket.close() never sends close_notify, so the client cannot tell
this complete echo from a connection cut by an attacker or a crash (a truncation).

    python3 tests/mutants/tls_no_close_notify.py PORT CERT KEY
"""

import socket

from _kit import ThreadedTLSEcho


class NoCloseNotify(ThreadedTLSEcho):
    def serve(self, conn: socket.socket) -> None:
        try:
            with self.handshake(conn) as tls:
                self.echo(tls)
                # the bug: no tls.unwrap() -- leaving the with-block closes TCP without close_notify
        except OSError:
            pass


NoCloseNotify().main()
