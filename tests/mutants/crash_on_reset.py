# MUTANT: lets ECONNRESET/EPIPE escape its event loop, so one client's reset kills the server | expect: ABORT-001
"""The correct selectors server (tests/correct/selectors_echo.py) that only expects would-block
errors: a reset raises ConnectionResetError out of the loop and the process exits.

    python3 tests/mutants/crash_on_reset.py PORT
"""

from _kit import Connection, EchoLoop, main


class CrashesOnReset(EchoLoop):
    def serve(self, conn: Connection, mask: int) -> None:
        try:
            self.transfer(conn, mask)
        except (BlockingIOError, InterruptedError):  # the bug: ConnectionError is not caught here
            pass
        self.settle(conn)


main(CrashesOnReset)
