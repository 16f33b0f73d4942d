# MUTANT: serves plain TCP on the TLS port when the first byte is not a TLS handshake | expect: TLS-004 | transport: tls
"""A threaded TLS echo server that peeks at the first byte and, unless it starts a TLS handshake
record (0x16), "helpfully" echoes in plain TCP: whatever a client sends by mistake in the clear
comes back in the clear, and a downgrade is one byte away.

    python3 tests/mutants/tls_plaintext_fallback.py PORT CERT KEY
"""

import socket
import ssl
import sys
import threading


def echo(conn):
    while data := conn.recv(65536):
        conn.sendall(data)


def serve(conn, context):
    with conn:
        try:
            if conn.recv(1, socket.MSG_PEEK) != b"\x16":
                echo(conn)  # the bug: a plain-TCP fallback on the TLS port
                return
            with context.wrap_socket(conn, server_side=True) as tls:
                echo(tls)
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
