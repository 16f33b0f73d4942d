"""The command line every Python server shares: flags, the listening socket, the announcement.

A server's command line is part of its contract: the test harness starts it with ``--host``
and ``--port`` (port 0: "any free port") and waits for the one announcement line on stdout,
``[server] listening on HOST:PORT``, which carries the port the kernel really chose (with
`` (tls)`` appended when the server speaks TLS). Errors are one line on stderr and exit status 2
-- never a traceback, never a usage block -- so whoever reads them (a person or a test) sees
the cause at once.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import socket
import ssl
import sys
from typing import NoReturn

# How many finished handshakes the kernel queues for us before accept() picks them up. Tests
# open hundreds of connections at once; a short queue would make the kernel drop SYNs and the
# clients retry a second later. Linux silently caps it at net.core.somaxconn (4096 by default).
BACKLOG = 4096


class OneLineErrorParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (``prog: error: message``), exit status 2."""

    def __init__(self, description: str) -> None:
        # Under ``python3 -m impls.threaded`` argparse would call itself "threaded.py"; name the
        # command the way it is typed instead.
        main_spec = getattr(sys.modules["__main__"], "__spec__", None)
        prog = f"python3 -m {main_spec.name}" if main_spec is not None else None
        super().__init__(prog=prog, description=description)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def port_number(text: str) -> int:
    """A TCP port, 0..65535; 0 asks the kernel for any free port."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port 0..65535, got {text!r}")
    return port


def positive_int(text: str) -> int:
    """An integer greater than zero."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected an integer > 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A number of seconds greater than zero (and finite)."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def server_parser(description: str, default_port: int) -> argparse.ArgumentParser:
    """The flags every Python server accepts; a server may add its own before parsing."""
    parser = OneLineErrorParser(description=description)
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default: %(default)s)",
    )
    parser.add_argument(
        "--port",
        type=port_number,
        default=default_port,
        help="port to bind, 0 for any free port (default: %(default)s)",
    )
    parser.add_argument(
        "--buffer-size",
        type=positive_int,
        default=65536,
        help="bytes asked of each recv() (default: %(default)s)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log each connection to stderr",
    )
    tls = parser.add_argument_group("TLS (both files, or neither for plain TCP)")
    tls.add_argument("--tls-cert", metavar="FILE", help="speak TLS with this PEM certificate (chain)")
    tls.add_argument("--tls-key", metavar="FILE", help="the PEM private key of --tls-cert")
    tls.add_argument(
        "--tls-handshake-timeout",
        type=positive_float,
        default=10.0,
        metavar="SECONDS",
        help="close a connection whose TLS handshake takes longer (default: %(default)s)",
    )
    return parser


def configure_logging(verbose: bool) -> None:
    """Per-connection lines with -v; otherwise only warnings. Never a line per message."""
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO if verbose else logging.WARNING,
        format="[server] %(message)s",
    )


def fail(message: str) -> NoReturn:
    """Print ``[server] error: message`` as one line on stderr and exit with status 2."""
    print(f"[server] error: {message}", file=sys.stderr)
    raise SystemExit(2)


def format_address(host: str, port: int) -> str:
    """HOST:PORT, with an IPv6 host in brackets (``[::1]:5051``) so the port stays readable."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def raise_fd_limit() -> None:
    """Lift this process's soft RLIMIT_NOFILE to its hard limit.

    A trap: most systems start a process with a soft limit of 1024 descriptors, and a server
    needs one per connection, so one that keeps the default stops accepting (EMFILE) at about a
    thousand clients, however much the machine could hold (SCALE-001 holds 1100).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def open_listener(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port) and listening, or one line of error and exit status 2.

    The name is resolved first, on its own, so a bad host ("nosuch.invalid", "999.1.1.1") and
    a busy port give two different, precise messages. The descriptor limit is raised first:
    every connection accepted from this socket will need a descriptor of its own.
    """
    raise_fd_limit()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    where = format_address(host, port)
    try:
        resolved = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    except socket.gaierror as exc:
        fail(f"bind {where}: {exc.strerror}")
    address = resolved[0][4]
    try:
        # create_server() sets SO_REUSEADDR, so a restarted server can bind the port again at
        # once instead of waiting out the old connections' TIME_WAIT. reuse_port stays off:
        # two servers silently sharing one port would hide a stale one still running.
        # For IPv6 it also sets IPV6_V6ONLY, so "::1" means IPv6 only, on every system.
        return socket.create_server(address, family=family, backlog=BACKLOG, reuse_port=False)
    except OSError as exc:
        # create_server() rewrites strerror to mention the address tuple; the errno is intact.
        fail(f"bind {where}: {os.strerror(exc.errno) if exc.errno else exc}")


def announce(listener: socket.socket, tls: bool = False) -> None:
    """Print ``[server] listening on HOST:PORT`` (`` (tls)`` added for TLS) with the address
    the kernel really bound.

    getsockname() is the only truth after binding port 0. flush=True matters: stdout is a
    pipe when a test harness runs us, so it is block-buffered and would otherwise sit unsent.
    """
    host, port = listener.getsockname()[:2]
    print(f"[server] listening on {format_address(host, port)}{' (tls)' if tls else ''}", flush=True)


class EncryptedKeyError(Exception):
    """The private key asks for a passphrase; a server has no one to ask."""


def _no_passphrase() -> bytes:
    raise EncryptedKeyError


def server_tls_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    """The TLS context for ``--tls-cert``/``--tls-key``, None for plain TCP, or one line and exit 2.

    Called before binding, so a bad certificate never leaves a half-started server. OpenSSL's
    own message for most mistakes is "PEM lib", which names neither the file nor the problem:
    each file is read first (its OS error, e.g. "No such file or directory"), and a refused
    pair is then examined to say which of the two is wrong and how.
    """
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        given, missing = ("--tls-cert", "--tls-key") if key is None else ("--tls-key", "--tls-cert")
        fail(f"{given} needs {missing} (both files, or neither for plain TCP)")
    for flag, path in (("--tls-cert", cert), ("--tls-key", key)):
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            fail(f"{flag} {path}: {exc.strerror or exc}")
    # The library's modern defaults (ciphers, no compression, TLS 1.3 as the maximum), with
    # TLS 1.0 and 1.1 refused. PROTOCOL_TLS_SERVER asks for no client certificate.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # No TLS 1.2 renegotiation (TLS 1.3 has none), as in the C++ server: a client could
    # otherwise make us redo the expensive half of a handshake as often as it likes.
    context.options |= ssl.OP_NO_RENEGOTIATION
    try:
        # password: an encrypted key would otherwise make OpenSSL prompt on the terminal.
        context.load_cert_chain(cert, key, password=_no_passphrase)
    except EncryptedKeyError:
        fail(f"--tls-key {key}: the key is encrypted; give an unencrypted PEM key")
    except ssl.SSLError as exc:
        fail(_why_refused(cert, key, exc))
    except OSError as exc:  # the file changed since we opened it
        fail(f"--tls-cert {cert} / --tls-key {key}: {exc.strerror or exc}")
    return context


def _why_refused(cert: str, key: str, exc: ssl.SSLError) -> str:
    if exc.reason == "KEY_VALUES_MISMATCH":
        return f"--tls-key {key}: key does not match the certificate {cert}"
    if not _is_pem_certificate(cert):
        return f"--tls-cert {cert}: not a PEM certificate"
    return f"--tls-key {key}: not a PEM private key"


def _is_pem_certificate(path: str) -> bool:
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
    except ssl.SSLError:
        return False
    return True
