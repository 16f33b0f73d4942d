"""``echo-conformance``: the conformance suite as one command, the way h2spec is used.

    echo-conformance 127.0.0.1:7                          # a server that is already running
    echo-conformance --server-cmd "my-echo --port {port}"   # a command the suite starts
    echo-conformance --impl cpp                           # a built-in implementation
    echo-conformance --list                               # the catalogue: ID, level, title

It is a thin layer over ``pytest.main``: the arguments become the plugin's options
(conformance/plugin.py), the tests are the installed ``conformance`` package, and the exit
status says what happened (conformance/exitstatus.py). Anything after ``--`` goes to pytest
as it is.

PYTEST_DONT_REWRITE: this module, and the two it imports, are loaded before pytest starts, so
pytest must not try to rewrite them afterwards; it imports nothing else of the suite (not
Hypothesis either) until pytest runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

import pytest

from conformance.exitstatus import (
    EXIT_CODES,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    FROM_PYTEST,
    UNAVAILABLE,
)
from impls.table import BY_NAME, TRANSPORTS

PROGRAM = "echo-conformance"


class OneLineParser(argparse.ArgumentParser):
    """Bad input is one line on stderr and exit status 2, not a usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def parser() -> argparse.ArgumentParser:
    codes = "\n".join(f"  {code}  {meaning}" for code, meaning in EXIT_CODES.items())
    cli = OneLineParser(
        prog=PROGRAM,
        description="Run the echo-server conformance suite (RFC 862) against one server.",
        epilog=f"exit status:\n{codes}\n\nArguments after -- are passed to pytest unchanged.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    target = cli.add_argument_group("the server (exactly one)")
    target.add_argument("address", nargs="?", metavar="HOST:PORT", help="a running echo server")
    target.add_argument("--server-cmd", metavar="CMD", help="a command that starts one; {port} is filled in")
    target.add_argument(
        "--impl", action="append", choices=sorted(BY_NAME), metavar="NAME", help="a built-in implementation"
    )
    target.add_argument(
        "--server-capabilities",
        metavar="NAMES",
        help="what the --server-cmd server can do: announces, graceful-exit, ipv6 (comma-separated)",
    )
    run = cli.add_argument_group("the run")
    run.add_argument("--list", action="store_true", help="print the catalogue (ID, level, title) and exit")
    run.add_argument(
        "--scenario",
        action="append",
        metavar="ID",
        help="an exact ID (HALF-001) or a family (ECHO); repeatable",
    )
    run.add_argument("--transport", action="append", choices=TRANSPORTS, help="tcp or tls (repeatable)")
    run.add_argument(
        "--jobs", default="auto", metavar="N", help="parallel workers (pytest-xdist; default auto)"
    )
    run.add_argument("--strict-should", action="store_true", help="a failed SHOULD fails the run too")
    run.add_argument(
        "--expect", metavar="FILE", help='JSON {"ID": "reason"}: known failures, reported EXPECTED'
    )
    run.add_argument(
        "--report-dir", metavar="DIR", help="where the JSON, HTML and JUnit reports go (default: a new one)"
    )
    run.add_argument("--tls-cafile", metavar="PEM", help="trust this CA for an external TLS server")
    run.add_argument("--tls-insecure", action="store_true", help="do not verify an external TLS server")
    run.add_argument("--hypothesis-profile", choices=("dev", "ci", "deep"), help="how many examples to draw")
    return cli


def pytest_arguments(args: argparse.Namespace, passthrough: list[str]) -> list[str]:
    """The pytest command line for these options."""
    chosen = [bool(args.address), bool(args.server_cmd), bool(args.impl)]
    if sum(chosen) != 1:
        raise ValueError("give exactly one server: HOST:PORT, --server-cmd CMD or --impl NAME")
    # -p: the plugin by name, whether or not the entry point loaded it already (then this is a no-op).
    argv = [
        "-p",
        "conformance.plugin",
        "--pyargs",
        "conformance",
        "-p",
        "no:cacheprovider",
        "-q",
        "--tb=short",
    ]
    if args.jobs not in ("auto", "logical") and not args.jobs.isdigit():
        raise ValueError(f"--jobs {args.jobs!r}: give a number or auto")
    argv += ["-n", "0" if args.jobs == "1" else args.jobs]
    argv += ["--server-addr", args.address] if args.address else []
    argv += ["--server-cmd", args.server_cmd] if args.server_cmd else []
    argv += [option for name in args.impl or [] for option in ("--impl", name)]
    argv += ["--server-capabilities", args.server_capabilities] if args.server_capabilities else []
    argv += [option for name in args.scenario or [] for option in ("--scenario", name)]
    argv += [option for name in args.transport or [] for option in ("--transport", name)]
    argv += ["--strict-should"] if args.strict_should else []
    argv += ["--expect", args.expect] if args.expect else []
    argv += ["--report-dir", args.report_dir] if args.report_dir is not None else []
    argv += ["--tls-cafile", args.tls_cafile] if args.tls_cafile else []
    argv += ["--tls-insecure"] if args.tls_insecure else []
    argv += ["--hypothesis-profile", args.hypothesis_profile] if args.hypothesis_profile else []
    return argv + passthrough


class Outcome:
    """A plugin of this command's own session: did the up-front check stop it? (pytest reports
    that as a usage error.)"""

    unavailable = False

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.unavailable = UNAVAILABLE in config.stash


def main(argv: list[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else argv
    split = given.index("--") if "--" in given else len(given)
    cli = parser()
    args = cli.parse_args(given[:split])
    if args.list:
        from conformance.harness.scenarios import catalogue, render_catalogue  # noqa: PLC0415 -- no pytest run follows

        print(render_catalogue(catalogue()))
        return EXIT_OK
    try:
        arguments = pytest_arguments(args, given[split + 1 :])
    except ValueError as exc:
        cli.error(str(exc))
    outcome = Outcome()
    code = pytest.main(arguments, plugins=[outcome])
    if outcome.unavailable:
        return EXIT_UNAVAILABLE
    return FROM_PYTEST.get(code, EXIT_INTERNAL)


if __name__ == "__main__":
    sys.exit(main())
