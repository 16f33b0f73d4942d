# MUTANT: accepts TLS 1.0 and 1.1 "for old clients" (minimum TLSv1, security level 0) | expect: TLS-003 | strict | transport: tls
"""A threaded TLS echo server configured for compatibility with old clients: minimum version
TLS 1.0 and OpenSSL security level 0, so that TLS 1.0/1.1 (deprecated by RFC 8996, with their
SHA-1 based handshakes and CBC-mode ciphers) are still negotiated.

    python3 tests/mutants/tls_accepts_tls1.py PORT CERT KEY
"""

import socket
import ssl
import sys
import threading
import warnings


def serve(conn, context):
    conn.settimeout(10)
    try:
        with context.wrap_socket(conn, server_side=True) as tls:
            tls.settimeout(None)
            while data := tls.recv(65536):
                tls.sendall(data)
            tls.unwrap()
    except OSError:
        pass


def main():
    port, cert, key = sys.argv[1:4]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1  # the bug: "for old clients"
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.load_cert_chain(cert, key)
    with socket.create_server(("127.0.0.1", int(port))) as listener:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=serve, args=(conn, context), daemon=True).start()


main()
