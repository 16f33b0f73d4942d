# MUTANT: a connection cut without close_notify (FIN or reset) is never closed nor forgotten | expect: TLS-009 | transport: tls
"""A threaded TLS echo server that keeps its connections in a registry (for a "who is connected"
report) and removes and closes them only on the clean path: a client that vanishes without
close_notify -- a TCP FIN (SSLEOFError) or a reset -- takes the error path, which only logs, so
its descriptor stays open for ever and its TCP connection is never closed.

    python3 tests/mutants/tls_leaks_on_truncation.py PORT CERT KEY
"""

import socket
import ssl
import sys
import threading

clients = set()


def serve(conn, context):
    conn.settimeout(10)
    try:
        tls = context.wrap_socket(conn, server_side=True, suppress_ragged_eofs=False)
    except OSError:
        conn.close()
        return
    tls.settimeout(None)
    clients.add(tls)
    try:
        while data := tls.recv(65536):
            tls.sendall(data)
        tls.unwrap()
    except OSError as exc:
        print(f"client error: {exc}", file=sys.stderr)
        return  # the bug: the error path neither closes the socket nor removes it from clients
    clients.discard(tls)
    tls.close()


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
