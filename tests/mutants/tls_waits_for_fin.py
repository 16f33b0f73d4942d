# MUTANT: treats the client's close_notify as "no data yet" and waits for the TCP FIN | expect: TLS-010 | transport: tls
"""The threaded TLS echo server (tests/mutants/_kit.py) over memory BIOs whose loop ends only when
the socket says EOF: the client's close_notify (SSLZeroReturnError) is taken for "nothing to read
yet". A client that sends close_notify and keeps TCP open to read the rest of its echo waits for
ever for the server's end.

    python3 tests/mutants/tls_waits_for_fin.py PORT CERT KEY
"""

import socket
import ssl

from _kit import READ_SIZE, ThreadedTLSEcho


def echo_records(tls):
    """Advance the handshake, then echo every complete record that has arrived."""
    try:
        tls.do_handshake()
        while data := tls.read(READ_SIZE):
            tls.write(data)
    except ssl.SSLWantReadError:
        pass
    except ssl.SSLZeroReturnError:
        pass  # the bug: close_notify is taken for "no data", the loop below waits for the FIN


class WaitsForFin(ThreadedTLSEcho):
    def serve(self, conn: socket.socket) -> None:
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = self.context.wrap_bio(incoming, outgoing, server_side=True)
        with conn:
            try:
                while data := conn.recv(READ_SIZE):
                    incoming.write(data)
                    echo_records(tls)
                    conn.sendall(outgoing.read())
                tls.unwrap()
                conn.sendall(outgoing.read())
            except OSError:
                pass


WaitsForFin().main()
