# MUTANT: accepts TLS 1.0 and 1.1 "for old clients" (minimum TLSv1, security level 0) | expect: TLS-003 | strict | transport: tls
"""The threaded TLS echo server (tests/mutants/_kit.py) configured for compatibility with old
clients: minimum version TLS 1.0 and OpenSSL security level 0, so that TLS 1.0/1.1 (deprecated by
RFC 8996, with their SHA-1 based handshakes and CBC-mode ciphers) are still negotiated.

    python3 tests/mutants/tls_accepts_tls1.py PORT CERT KEY
"""

import ssl
import warnings

from _kit import ThreadedTLSEcho


class AcceptsTLS1(ThreadedTLSEcho):
    def make_context(self, cert: str, key: str) -> ssl.SSLContext:
        context = super().make_context(cert, key)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1  # the bug: "for old clients"
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        return context


AcceptsTLS1().main()
