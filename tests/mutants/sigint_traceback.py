# MUTANT: Ctrl-C (SIGINT) is left to Python: KeyboardInterrupt traceback, killed by SIGINT (status -2) | expect: LIFE-004 | capabilities: announces,graceful-exit
"""The threaded echo server (tests/mutants/_kit.py) handling SIGTERM but not SIGINT: Ctrl-C raises
KeyboardInterrupt in the accept loop, prints a traceback and dies of SIGINT (Python re-raises it
on the way out).

    python3 tests/mutants/sigint_traceback.py PORT
"""

import signal

from _kit import ThreadedEcho, exit_cleanly


class SigintTraceback(ThreadedEcho):
    def handle_signals(self) -> None:
        signal.signal(signal.SIGTERM, exit_cleanly)
        # the bug: SIGINT is left to Python's default KeyboardInterrupt


SigintTraceback().main()
