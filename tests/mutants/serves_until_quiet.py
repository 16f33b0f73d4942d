# MUTANT: serves a readable client until it pauses, so one that streams without pause starves the rest | expect: CONC-006
"""The correct selectors server (tests/correct/selectors_echo.py) that stays with a client while it
keeps talking.

"Finish the conversation before turning to the next one": once a client is readable, the loop
keeps reading and echoing it (blocking, with a short timeout) until it has been quiet for a
moment. A client that streams without pausing keeps the loop for as long as it streams; new
clients wait in the backlog and quiet ones get no answer meanwhile.

    python3 tests/mutants/serves_until_quiet.py PORT
"""

from _kit import READ_SIZE, Connection, EchoLoop, main

QUIET_S = 2.0


class ServesUntilQuiet(EchoLoop):
    def serve(self, conn: Connection, mask: int) -> None:
        conn.sock.settimeout(QUIET_S)
        try:
            # the bug: this client's pauses, not a fair share, decide when the others get a turn
            while data := conn.sock.recv(READ_SIZE):
                conn.sock.sendall(data)
        except TimeoutError:
            return  # quiet for a moment: back to the others
        except OSError:
            pass
        self.close(conn)


main(ServesUntilQuiet)
