# MUTANT: closes the TLS connection without close_notify (close() without unwrap()) | expect: TLS-008 | transport: tls
"""A threaded TLS echo server that, at the client's close_notify, simply closes the socket: Python's
SSLSocket.close() never sends close_notify, so the client cannot tell this complete echo from a
connection cut by an attacker or a crash (a truncation).

    python3 tests/mutants/tls_no_close_notify.py PORT CERT KEY
"""

import socket
import ssl
import sys
import threading


def serve(conn, context):
    conn.settimeout(10)
    try:
        with context.wrap_socket(conn, server_side=True) as tls:
            tls.settimeout(None)
            while data := tls.recv(65536):
                tls.sendall(data)
            # the bug: no tls.unwrap() -- leaving the with-block closes TCP without close_notify
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
