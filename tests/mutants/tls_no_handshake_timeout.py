# MUTANT: runs the handshake in the connection's thread, but with no timeout | expect: TLS-007 | strict | transport: tls
"""A threaded TLS echo server that does the handshake in the right place (the connection's own
thread) but never bounds it: every client that connects and stalls holds a thread and a
descriptor for ever, and a few thousand idle connections exhaust the server.

    python3 tests/mutants/tls_no_handshake_timeout.py PORT CERT KEY
"""

import socket
import ssl
import sys
import threading


def serve(conn, context):
    try:
        with context.wrap_socket(conn, server_side=True) as tls:  # the bug: no settimeout() first
            while data := tls.recv(65536):
                tls.sendall(data)
            tls.unwrap()
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
