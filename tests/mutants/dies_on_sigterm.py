# MUTANT: no SIGTERM handler: SIGTERM kills it (status -15) instead of a clean exit 0 | expect: LIFE-003 | capabilities: announces,graceful-exit
"""The threaded echo server (tests/mutants/_kit.py) handling only Ctrl-C: SIGTERM, what
supervisors and container runtimes send, takes the default action and kills the process (no
clean exit, status -SIGTERM).

    python3 tests/mutants/dies_on_sigterm.py PORT
"""

import signal

from _kit import ThreadedEcho, exit_cleanly


class DiesOnSigterm(ThreadedEcho):
    def handle_signals(self) -> None:
        # the bug: SIGTERM is left at its default action
        signal.signal(signal.SIGINT, exit_cleanly)


DiesOnSigterm().main()
