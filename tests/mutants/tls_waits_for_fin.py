# MUTANT: treats the client's close_notify as "no data yet" and waits for the TCP FIN | expect: TLS-010 | transport: tls
"""A threaded TLS echo server over memory BIOs whose loop ends only when the socket says EOF: the
client's close_notify (SSLZeroReturnError) is taken for "nothing to read yet". A client that sends
close_notify and keeps TCP open to read the rest of its echo waits for ever for the server's end.

    python3 tests/mutants/tls_waits_for_fin.py PORT CERT KEY
"""

import socket
import ssl
import sys
import threading


def echo_records(tls):
    """Advance the handshake, then echo every complete record that has arrived."""
    try:
        tls.do_handshake()
        while data := tls.read(65536):
            tls.write(data)
    except ssl.SSLWantReadError:
        pass
    except ssl.SSLZeroReturnError:
        pass  # the bug: close_notify is taken for "no data", the loop below waits for the FIN


def serve(conn, context):
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_side=True)
    with conn:
        try:
            while data := conn.recv(65536):
                incoming.write(data)
                echo_records(tls)
                conn.sendall(outgoing.read())
            tls.unwrap()
            conn.sendall(outgoing.read())
        except OSError:
            pass


def main():
    port, cert, key = sys.argv[1:4]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    with socket.create_server(("127.0.0.1", int(port))) as listener:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=serve, args=(conn, context), daemon=True).start()


main()
