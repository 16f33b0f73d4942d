# MUTANT: the accept loop does the TLS handshake before handing the connection to a thread | expect: TLS-006 | transport: tls
"""A threaded TLS echo server that wraps each connection (and so runs the handshake) in the accept
loop, "so that the thread only ever sees a ready TLS socket": a client that connects and stays
silent, or stops half-way through its ClientHello, blocks the accept loop, and everyone after it.

    python3 tests/mutants/tls_handshake_in_accept_loop.py PORT CERT KEY
"""

import socket
import ssl
import sys
import threading


def serve(conn):
    with conn:
        try:
            while data := conn.recv(65536):
                conn.sendall(data)
            conn.unwrap()
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
            try:
                tls = context.wrap_socket(conn, server_side=True)  # the bug: the handshake, here
            except OSError:
                conn.close()
                continue
            threading.Thread(target=serve, args=(tls,), daemon=True).start()


main()
